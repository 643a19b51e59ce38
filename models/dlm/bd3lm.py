"""Block diffusion (BD3-LM) on the shared DiT: attention masks, the training objective and the
one-block-at-a-time module that the engine runs against a cache of committed blocks.

The sequence is cut into blocks of `block_size` tokens, aligned at position 0. A block sees the
clean blocks before it and itself (bidirectionally inside the block). Training runs the noisy
sequence x_t and the clean one x_0 side by side in one forward pass of length 2L ("vectorized"
BD3-LM): x_t block b attends to x_t block b and to x_0 blocks < b; x_0 block b attends to x_0
blocks <= b. Both halves use positions 0..L-1, so the keys x_0 contributes are exactly the keys
the engine caches for a committed block.

Noise is drawn per block (one t per block, stratified over the batch), clipped to
[t_min, t_max] as BD3-LM's clipped schedules do to cut the variance of the gradient.
"""
from __future__ import annotations

import torch

from .dit import DiT, NEG
from .mdlm import loglinear_sigma, masked_nelbo


def _block_ids(L: int, block_size: int, device=None) -> torch.Tensor:
    return torch.arange(L, device=device) // block_size


def block_causal_bias(L: int, block_size: int, device=None) -> torch.Tensor:
    """[1, 1, L, L] additive bias: query block >= key block is allowed."""
    b = _block_ids(L, block_size, device)
    allowed = b[:, None] >= b[None, :]
    return torch.where(allowed, 0.0, NEG)[None, None]


def vectorized_bias(L: int, block_size: int, device=None) -> torch.Tensor:
    """[1, 1, 2L, 2L] additive bias over the concatenation [x_t ; x_0]."""
    b = _block_ids(L, block_size, device)
    bq = torch.cat([b, b])
    clean = torch.cat([torch.zeros(L, dtype=torch.bool, device=device),
                       torch.ones(L, dtype=torch.bool, device=device)])
    q_clean, k_clean = clean[:, None], clean[None, :]
    same_block = bq[:, None] == bq[None, :]
    noisy_self = ~q_clean & ~k_clean & same_block
    noisy_ctx = ~q_clean & k_clean & (bq[:, None] > bq[None, :])
    clean_causal = q_clean & k_clean & (bq[:, None] >= bq[None, :])
    allowed = noisy_self | noisy_ctx | clean_causal
    return torch.where(allowed, 0.0, NEG)[None, None]


def block_times(B: int, n_blocks: int, generator: torch.Generator, device, t_min: float, t_max: float):
    """One t per block, stratified over all B * n_blocks blocks, in [t_min, t_max]."""
    n = B * n_blocks
    u = torch.rand(1, generator=generator, device='cpu').to(device)
    t = (u + torch.arange(n, device=device) / n) % 1
    return (t_min + (t_max - t_min) * t).view(B, n_blocks)


def bd3lm_loss(model: DiT, x0: torch.Tensor, mask_id: int, generator: torch.Generator,
               block_size: int, eps=1e-3, t_min=0.0, t_max=1.0, weighting='elbo'):
    """(loss to minimise, NELBO nats/token for logging), as dlm.mdlm.mdlm_loss returns.

    The NELBO is a bound only for the unclipped range t_min=0, t_max=1 (validation uses that)."""
    B, L = x0.shape
    if L % block_size:
        raise ValueError(f'sequence length {L} is not a multiple of block size {block_size}')
    t = block_times(B, L // block_size, generator, x0.device, t_min, t_max)
    t = t.repeat_interleave(block_size, dim=1)  # [B, L]
    sigma = loglinear_sigma(t, eps)
    move = 1 - torch.exp(-sigma)
    r = torch.rand(B, L, generator=generator, device='cpu').to(x0.device)
    masked = r < move
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    pos = torch.arange(L, device=x0.device)
    positions = torch.cat([pos, pos])[None].expand(B, 2 * L)
    logits = model(torch.cat([xt, x0], dim=1), attn_bias=vectorized_bias(L, block_size, x0.device),
                   positions=positions)[:, :L]
    return masked_nelbo(logits, x0, masked, t, sigma, eps, mask_id, weighting)


class BlockDenoiser(torch.nn.Module):
    """The exported `block` graph: one block against the committed blocks' keys/values.

    tokens, attention_mask, positions [B, Lb]; past_keys, past_values [B, nL, H, P, Dh];
    past_mask [B, P] (0 = a padded past slot, ignored) -> logits [B, Lb, V],
    present_keys, present_values [B, nL, H, Lb, Dh] (rotary already applied, so a committed
    block's entries are appended to the cache as they are)."""

    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit

    def forward(self, tokens, attention_mask, positions, past_keys, past_values, past_mask):
        return self.attend(tokens, attention_mask, None, positions, past_keys, past_values, past_mask)

    def attend(self, tokens, attention_mask, sigma, positions, past_keys, past_values, past_mask):
        keys_ok = torch.cat([past_mask, attention_mask], dim=1).float()
        bias = (1.0 - keys_ok)[:, None, None, :] * NEG
        past = [(past_keys[:, i], past_values[:, i]) for i in range(self.dit.cfg.n_layers)]
        logits, presents = self.dit(tokens, sigma, attn_bias=bias, positions=positions, past=past,
                                    return_present=True)
        return (logits, torch.stack([k for k, _ in presents], dim=1),
                torch.stack([v for _, v in presents], dim=1))


class TimedBlockDenoiser(BlockDenoiser):
    """BlockDenoiser for a time-conditioned DiT (Duo): the same contract plus sigma [B], which
    conditions every position's adaLN, so the keys/values a call returns hold for that sigma."""

    def forward(self, tokens, attention_mask, sigma, positions, past_keys, past_values, past_mask):
        return self.attend(tokens, attention_mask, sigma, positions, past_keys, past_values, past_mask)


def empty_past(dit: DiT, B: int, P: int = 0):
    c = dit.cfg
    z = torch.zeros(B, c.n_layers, c.n_heads, P, c.head_dim)
    return z, z.clone(), torch.zeros(B, P, dtype=torch.long)


@torch.no_grad()
def cached_forward(dit: DiT, x: torch.Tensor, block_size: int):
    """Logits of the clean sequence x [B, L] block by block through BlockDenoiser, each block's
    present K/V appended to the past: what the engine does, in PyTorch."""
    den = BlockDenoiser(dit).eval()
    B, L = x.shape
    pk, pv, pm = empty_past(dit, B)
    out = []
    for s in range(0, L, block_size):
        blk = x[:, s:s + block_size]
        n = blk.shape[1]
        pos = torch.arange(s, s + n)[None].expand(B, n)
        logits, k, v = den(blk, torch.ones(B, n, dtype=torch.long), pos, pk, pv, pm)
        out.append(logits)
        pk, pv = torch.cat([pk, k], dim=3), torch.cat([pv, v], dim=3)
        pm = torch.cat([pm, torch.ones(B, n, dtype=torch.long)], dim=1)
    return torch.cat(out, dim=1)
