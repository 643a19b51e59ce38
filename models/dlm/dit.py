"""The diffusion transformer (DiT) of MDLM, Duo and BD3-LM in plain PyTorch.

Parameter names and shapes follow the published kuleshov-group/mdlm-owt checkpoint (under its
`backbone.` prefix), so that state dict loads unchanged. Attention is written out (no flash-attn,
no SDPA requirement) so it exports to ONNX with torch 1.13; it takes an additive bias and explicit
positions, which is what the block, causal and padded variants need.

Hooks for the other families: `attn_bias` (block-causal, causal, padding), `positions` (a block
at an offset), `extra_embed` (LDDM's latent, added to the token embeddings), `return_hidden`
(the last hidden state, for LDDM), and per-layer `past`/`present` keys and values (BD3-LM's cache).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DiTConfig:
    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    cond_dim: int = 128
    max_length: int = 256
    mlp_ratio: int = 4
    dropout: float = 0.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


_HAS_SDPA = hasattr(F, 'scaled_dot_product_attention')


def layer_norm(x: torch.Tensor, weight: torch.Tensor, dim: int) -> torch.Tensor:
    """LayerNorm with a weight and no bias, computed in fp32 as the reference does. `dim` is a
    Python int so that tracing for ONNX export keeps it a constant."""
    # An explicit zero bias: torch 1.13 exports a bias-less LayerNormalization with an empty
    # input name, and ONNX Runtime 1.29's extended graph optimiser segfaults on that (seen here).
    return F.layer_norm(x.float(), (dim,), weight.float(), torch.zeros_like(weight, dtype=torch.float32)).type_as(x)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class EmbeddingLayer(nn.Module):
    def __init__(self, dim: int, vocab: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, x):
        return self.embedding[x]


class TimestepEmbedder(nn.Module):
    """sigma -> conditioning vector: sinusoidal features then a two-layer SiLU MLP."""

    def __init__(self, hidden: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32,
                                                             device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class Rotary(nn.Module):
    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        self.register_buffer('inv_freq', 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim))

    def forward(self, positions):
        """positions [B, L] -> cos, sin [B, 1, L, head_dim] (halves repeated, rotate-half style)."""
        freqs = positions.float()[..., None] * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]
        return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x, cos, sin):
    return x * cos + rotate_half(x) * sin


class DDiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.d_model = cfg.d_model
        self.head_dim = cfg.head_dim
        self.norm1 = nn.Module()
        self.norm1.weight = nn.Parameter(torch.ones(d))
        self.attn_qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = nn.Module()
        self.norm2.weight = nn.Parameter(torch.ones(d))
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate='tanh'),
                                 nn.Linear(cfg.mlp_ratio * d, d))
        self.dropout = nn.Dropout(cfg.dropout)
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 6 * d)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c, cos, sin, attn_bias=None, past=None):
        """x [B,L,D]; c [B,cond]; attn_bias broadcastable to [B,H,L,P+L]; past (k, v) [B,H,P,Dh].

        Returns (x, (k, v)) where k, v are this call's own keys/values [B,H,L,Dh]."""
        B, L = x.shape[0], x.shape[1]
        D, H, Dh = self.d_model, self.n_heads, self.head_dim
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        h = modulate(layer_norm(x, self.norm1.weight, D), shift_msa, scale_msa)
        qkv = self.attn_qkv(h).view(B, L, 3, H, Dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        present = (k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if _HAS_SDPA and not torch.onnx.is_in_onnx_export():
            # torch 2.x on the GPU: fused attention (flash when there is no bias).
            mask = None if attn_bias is None else attn_bias.to(q.dtype)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(Dh))
            if attn_bias is not None:
                scores = scores + attn_bias
            att = torch.softmax(scores.float(), dim=-1).type_as(v)
            o = torch.matmul(att, v)
        o = o.transpose(1, 2).reshape(B, L, D)
        x = x + gate_msa * self.dropout(self.attn_out(o))
        x = x + gate_mlp * self.dropout(self.mlp(modulate(layer_norm(x, self.norm2.weight, D), shift_mlp, scale_mlp)))
        return x, present


class DDiTFinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.d_model = cfg.d_model
        self.norm_final = nn.Module()
        self.norm_final.weight = nn.Parameter(torch.ones(cfg.d_model))
        self.linear = nn.Linear(cfg.d_model, cfg.vocab_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 2 * cfg.d_model)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(modulate(layer_norm(x, self.norm_final.weight, self.d_model), shift, scale))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        self.vocab_embed = EmbeddingLayer(cfg.d_model, cfg.vocab_size)
        self.sigma_map = TimestepEmbedder(cfg.cond_dim)
        self.rotary_emb = Rotary(cfg.head_dim)
        self.blocks = nn.ModuleList([DDiTBlock(cfg) for _ in range(cfg.n_layers)])
        self.output_layer = DDiTFinalLayer(cfg)

    def forward(self, tokens, sigma=None, attn_bias=None, positions=None, extra_embed=None,
                past=None, return_hidden=False, return_present=False):
        """tokens [B,L] -> logits [B,L,V].

        sigma [B] (zeros when None: the released MDLM models are not time-conditioned);
        positions [B,L] (0..L-1 when None); past: list of (k, v) per layer."""
        B, L = tokens.shape
        if sigma is None:
            sigma = torch.zeros(B, device=tokens.device)
        if positions is None:
            positions = torch.arange(L, device=tokens.device)[None].expand(B, L)
        x = self.vocab_embed(tokens)
        if extra_embed is not None:
            x = x + extra_embed
        c = F.silu(self.sigma_map(sigma))
        cos, sin = self.rotary_emb(positions)
        presents = []
        for i, block in enumerate(self.blocks):
            x, pres = block(x, c, cos, sin, attn_bias, None if past is None else past[i])
            presents.append(pres)
        logits = self.output_layer(x, c)
        out = [logits]
        if return_hidden:
            out.append(x)
        if return_present:
            out.append(presents)
        return out[0] if len(out) == 1 else tuple(out)


NEG = -1e9  # additive bias for a blocked key: exp() underflows to exactly 0 in fp32


def padding_bias(attention_mask: torch.Tensor) -> torch.Tensor:
    """attention_mask [B,L] (1 real, 0 padding) -> additive bias [B,1,1,L] over keys."""
    return (1.0 - attention_mask.float())[:, None, None, :] * NEG


def causal_bias(L: int, device=None) -> torch.Tensor:
    return torch.triu(torch.full((L, L), NEG, device=device), diagonal=1)[None, None]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
