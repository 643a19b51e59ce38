"""E2D2 (Arriola et al. 2025): an encoder over the clean context and a light decoder over the
noisy block, built from the DiT's pieces (models/dlm/dit.py).

The sequence is cut into blocks of `block_size` tokens aligned at position 0.
  encoder  the clean tokens, block-causal (a block sees itself and the blocks before it). At
           serving time it runs once per committed block, its own keys/values cached.
  decoder  the noisy block: each decoder layer attends to [the encoder's last hidden state of
           the earlier blocks ; the noisy block itself]. The context's keys/values are the
           decoder layer's own projections of the encoder states, so the engine computes them
           once per committed block (in the encoder graph) and each denoising step runs only
           the decoder over the block's few tokens.
The decoder shares the token embedding with the encoder and owns the output layer. The layer
split (`dec_layers` of cfg.n_layers) is a setting. Time is not an input (sigma is zero), as in
MDLM and BD3-LM.

Training: per-block noise (one t per block, stratified, clipped to [t_min, t_max]) with MDLM's
continuous-time NELBO; every block keeps at least one [MASK] so no block is trained as a no-op.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dit import (NEG, DDiTBlock, DDiTFinalLayer, DiTConfig, EmbeddingLayer, Rotary,
                  TimestepEmbedder, apply_rotary, layer_norm, modulate)
from .mdlm import loglinear_sigma, masked_nelbo

FAMILIES = ('e2d2',)


class E2D2(nn.Module):
    def __init__(self, cfg: DiTConfig, dec_layers: int):
        super().__init__()
        if not 0 < dec_layers < cfg.n_layers:
            raise ValueError(f'dec_layers must be in [1, {cfg.n_layers - 1}] (n_layers {cfg.n_layers})')
        self.cfg = cfg
        self.dec_layers = dec_layers
        self.enc_layers = cfg.n_layers - dec_layers
        # The cache's head count and width (e2d2_export sizes its inputs from these).
        self.kv_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.vocab_embed = EmbeddingLayer(cfg.d_model, cfg.vocab_size)
        self.sigma_map = TimestepEmbedder(cfg.cond_dim)
        self.rotary_emb = Rotary(cfg.head_dim)
        self.encoder = nn.ModuleList([DDiTBlock(cfg) for _ in range(self.enc_layers)])
        self.decoder = nn.ModuleList([DDiTBlock(cfg) for _ in range(dec_layers)])
        self.output_layer = DDiTFinalLayer(cfg)

    def _cond(self, B: int, device) -> torch.Tensor:
        return F.silu(self.sigma_map(torch.zeros(B, device=device)))

    def encode(self, tokens, positions, attn_bias, past=None):
        """Clean tokens [B,L] -> (last hidden state [B,L,D], per-layer (k, v) of these tokens)."""
        x = self.vocab_embed(tokens)
        c = self._cond(tokens.shape[0], tokens.device)
        cos, sin = self.rotary_emb(positions)
        presents = []
        for i, block in enumerate(self.encoder):
            x, pres = block(x, c, cos, sin, attn_bias, None if past is None else past[i])
            presents.append(pres)
        return x, presents

    def context_kv(self, hidden, positions):
        """Each decoder layer's keys/values of the encoder states hidden [B,L,D]: what that
        layer's attention would compute for them (adaLN, weight-only LayerNorm, rotary)."""
        B, L = hidden.shape[0], hidden.shape[1]
        D, H, Dh = self.cfg.d_model, self.cfg.n_heads, self.cfg.head_dim  # ints: export keeps them constant
        c = self._cond(B, hidden.device)
        cos, sin = self.rotary_emb(positions)
        out = []
        for block in self.decoder:
            shift, scale = block.adaLN_modulation(c)[:, None].chunk(6, dim=2)[:2]
            h = modulate(layer_norm(hidden, block.norm1.weight, D), shift, scale)
            kv = F.linear(h, block.attn_qkv.weight[D:]).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)
            out.append((apply_rotary(kv[0], cos, sin), kv[1]))
        return out

    def decode(self, tokens, positions, context, attn_bias):
        """Noisy tokens [B,L] against per-decoder-layer context (k, v) [B,H,P,Dh] -> logits.
        attn_bias covers the keys [context ; tokens]."""
        x = self.vocab_embed(tokens)
        c = self._cond(tokens.shape[0], tokens.device)
        cos, sin = self.rotary_emb(positions)
        for j, block in enumerate(self.decoder):
            x, _ = block(x, c, cos, sin, attn_bias, context[j])
        return self.output_layer(x, c)

    def forward(self, xt, x0, block_size: int):
        """Training / full forward: logits [B,L,V] for the noisy xt given the clean x0."""
        B, L = x0.shape
        pos = torch.arange(L, device=x0.device)[None].expand(B, L)
        h, _ = self.encode(x0, pos, encoder_bias(L, block_size, x0.device))
        return self.decode(xt, pos, self.context_kv(h, pos), decoder_bias(L, block_size, x0.device))


def _blocks(L: int, block_size: int, device=None) -> torch.Tensor:
    return torch.arange(L, device=device) // block_size


def encoder_bias(L: int, block_size: int, device=None) -> torch.Tensor:
    """[1,1,L,L]: block-causal (query block >= key block)."""
    b = _blocks(L, block_size, device)
    return torch.where(b[:, None] >= b[None, :], 0.0, NEG)[None, None]


def decoder_bias(L: int, block_size: int, device=None) -> torch.Tensor:
    """[1,1,L,2L] over [encoder states ; noisy tokens]: a noisy block sees the encoder states of
    the blocks before it and its own noisy tokens."""
    b = _blocks(L, block_size, device)
    ctx = b[:, None] > b[None, :]
    own = b[:, None] == b[None, :]
    return torch.where(torch.cat([ctx, own], dim=1), 0.0, NEG)[None, None]


def block_noise(x0, mask_id: int, block_size: int, generator: torch.Generator, eps: float,
                t_min: float, t_max: float, force: bool = True, allowed=None):
    """(x_t, masked, t [B,L]): one stratified t per block; with force, every block keeps a
    [MASK] (training; validation leaves the draw alone so the NELBO stays a bound).
    allowed [B,L] bool: only those positions may be masked, and only blocks holding one must
    keep a [MASK] (the chat fine-tune: the prompt stays clean)."""
    B, L = x0.shape
    nb = L // block_size
    n = B * nb
    u = torch.rand(1, generator=generator)
    t = (t_min + (t_max - t_min) * ((u + torch.arange(n) / n) % 1)).view(B, nb)
    t = t.repeat_interleave(block_size, dim=1).to(x0.device)
    move = 1 - torch.exp(-loglinear_sigma(t, eps))
    r = torch.rand(B, L, generator=generator).to(x0.device)
    masked = r < move
    if allowed is not None:
        allowed = allowed.to(x0.device)
        masked = masked & allowed
        r = r.masked_fill(~allowed, 2.0)  # never the lowest-r position of a block that has an allowed one
    # A block drawn with no [MASK] would train nothing: mask its lowest-r position instead.
    none = ~masked.view(B, nb, block_size).any(-1)
    if allowed is not None:
        none = none & allowed.view(B, nb, block_size).any(-1)
    if force and bool(none.any()):
        low = r.view(B, nb, block_size).argmin(-1)
        force = F.one_hot(low, block_size).bool() & none[..., None]
        masked = masked | force.view(B, L)
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return xt, masked, t


def e2d2_loss(model: E2D2, x0, mask_id: int, generator: torch.Generator, block_size: int, eps=1e-3,
              t_min=0.0, t_max=1.0, weighting='elbo', force=True):
    """(loss to minimise, NELBO nats/token for logging), as dlm.mdlm.mdlm_loss returns."""
    B, L = x0.shape
    if L % block_size:
        raise ValueError(f'sequence length {L} is not a multiple of block size {block_size}')
    xt, masked, t = block_noise(x0, mask_id, block_size, generator, eps, t_min, t_max, force)
    return masked_nelbo(model(xt, x0, block_size), x0, masked, t, loglinear_sigma(t, eps), eps, mask_id, weighting)


# --- the trainer's plug (models/dlm/train.py) ----------------------------------------------

def add_args(ap) -> None:
    """--block-sizes may already be there (BD3-LM adds the same flag with the same meaning)."""
    if '--block-sizes' not in ap._option_string_actions:
        ap.add_argument('--block-sizes', default='4', help='comma-separated block sizes trained (first = default)')
    ap.add_argument('--dec-layers', type=int, default=1, help='e2d2: decoder layers out of the preset n_layers')


def _sizes(a) -> list[int]:
    s = a.block_sizes
    return [int(x) for x in str(s).split(',') if x] if isinstance(s, str) else list(s)


def build(cfg: DiTConfig, a) -> E2D2:
    return E2D2(cfg, a.dec_layers)


def loss(a, model, x0, gen, mask_id):
    sizes = _sizes(a)
    bs = sizes[int(torch.randint(len(sizes), (1,), generator=gen))]
    return e2d2_loss(model, x0, mask_id, gen, bs, eps=a.eps, t_min=a.t_min, t_max=a.t_max,
                     weighting=a.loss_weighting)


@torch.no_grad()
def val_nelbo(a, model, x0, gen, mask_id) -> float:
    """The unclipped bound at the first (served default) block size."""
    return float(e2d2_loss(model, x0, mask_id, gen, _sizes(a)[0], eps=a.eps, force=False)[1])


def results_extra(a) -> dict:
    return {'block_sizes': _sizes(a), 'dec_layers': a.dec_layers}
