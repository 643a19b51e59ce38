"""The published E2D2 backbone (kuleshov-group/e2d2, `LLMasEncoderDecoder` over Qwen3 layers) in
plain PyTorch, with the serving split of our own E2D2 (models/dlm/e2d2.py), so that
models/dlm/e2d2_export.py exports it to the same encoder.onnx / decoder.onnx.

What the reference computes (src/backbone/encoder_decoder.py, custom_modeling_qwen3.py):
  encoder  a Qwen3 model over the clean tokens, block-causal; its last hidden state is taken
           after the final RMSNorm (Qwen3Model applies `norm` before returning).
  decoder  Qwen3 layers of its own. It has no embedding: the noisy tokens go through the
           encoder's `embed_tokens`. Each decoder layer takes [encoder last hidden state ;
           noisy hidden state]: keys/values from both (its own input RMSNorm, k/v projections,
           k RMSNorm, rotary), queries and the residual stream from the noisy part only; the
           encoder states are put back unchanged before the next layer. Then the decoder's
           final RMSNorm and the output layer, which is the encoder's, tied to its embedding.
  positions  a clean token and a noisy token at the same index share one position.
  attention  grouped-query (n_kv_heads key/value heads, n_heads query heads), q/k RMSNorm
           over head_dim before rotary (rotate-half, base rope_theta), scale head_dim^-0.5.
  MLP      SwiGLU: down(silu(gate(x)) * up(x)); no biases anywhere; no time input.

Because the encoder states are the same at every decoder layer, each decoder layer's keys and
values of them are computed once per committed block (`context_kv`), kept un-repeated (n_kv_heads
heads: the cache is n_heads / n_kv_heads times smaller), and every denoising step runs the decoder
over the block's tokens only. Query heads are grouped onto their key/value head inside attention.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dit import Rotary, apply_rotary
from .e2d2 import decoder_bias, encoder_bias


@dataclass
class Qwen3E2D2Config:
    vocab_size: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    enc_layers: int
    dec_layers: int
    max_length: int = 1024
    rope_theta: float = 1e6
    rms_eps: float = 1e-6
    # False: the checkpoint carries an output layer of its own (the reference deletes the
    # encoder's and keeps the decoder's when the base LM does not tie them).
    tied: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)


class Attention(nn.Module):
    def __init__(self, c: Qwen3E2D2Config):
        super().__init__()
        if c.n_heads % c.n_kv_heads:
            raise ValueError(f'n_heads {c.n_heads} is not a multiple of n_kv_heads {c.n_kv_heads}')
        self.H, self.Hkv, self.Dh = c.n_heads, c.n_kv_heads, c.head_dim
        self.q_proj = nn.Linear(c.d_model, c.n_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_eps)
        self.k_norm = RMSNorm(c.head_dim, c.rms_eps)

    def kv(self, h, cos, sin):
        """Normed input [B,L,D] -> keys (k-normed, rotated), values: [B,Hkv,L,Dh] each."""
        B, L = h.shape[0], h.shape[1]
        k = self.k_norm(self.k_proj(h).view(B, L, self.Hkv, self.Dh)).transpose(1, 2)
        v = self.v_proj(h).view(B, L, self.Hkv, self.Dh).transpose(1, 2)
        return apply_rotary(k, cos, sin), v

    def forward(self, h, cos, sin, bias, past=None):
        """h [B,L,D] (already input-normed); bias broadcastable to [B,1,L,P+L]; past (k, v)
        [B,Hkv,P,Dh]. Returns (output [B,L,D], this call's own (k, v))."""
        B, L = h.shape[0], h.shape[1]
        H, Hkv, Dh = self.H, self.Hkv, self.Dh
        q = apply_rotary(self.q_norm(self.q_proj(h).view(B, L, H, Dh)).transpose(1, 2), cos, sin)
        k, v = self.kv(h, cos, sin)
        present = (k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        S = k.shape[2]
        # Query head h reads key/value head h // (H / Hkv) (Hugging Face's repeat_kv order):
        # group the queries rather than copy the keys and values.
        rep = H // Hkv
        qg = q.reshape(B, Hkv, rep * L, Dh)
        s = torch.matmul(qg, k.transpose(2, 3)).view(B, Hkv, rep, L, S) * Dh ** -0.5
        if bias is not None:
            s = s + bias[:, :, None]
        p = torch.softmax(s.float(), dim=-1).type_as(q).view(B, Hkv, rep * L, S)
        o = torch.matmul(p, v).view(B, H, L, Dh).transpose(1, 2).reshape(B, L, H * Dh)
        return self.o_proj(o), present


class MLP(nn.Module):
    def __init__(self, c: Qwen3E2D2Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.up_proj = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.down_proj = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    """One Qwen3 decoder layer; `past` is the encoder's own cache (encoder) or this layer's
    keys/values of the encoder states (decoder)."""

    def __init__(self, c: Qwen3E2D2Config):
        super().__init__()
        self.input_layernorm = RMSNorm(c.d_model, c.rms_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.d_model, c.rms_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, bias, past=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, past)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), present


class Stack(nn.Module):
    def __init__(self, c: Qwen3E2D2Config, n: int):
        super().__init__()
        self.layers = nn.ModuleList([Layer(c) for _ in range(n)])
        self.norm = RMSNorm(c.d_model, c.rms_eps)


class Qwen3E2D2(nn.Module):
    """Parameter names: `encoder.embed_tokens`, `encoder.layers.N.*`, `encoder.norm`,
    `decoder.layers.N.*`, `decoder.norm`, `lm_head` (only when untied) - the published
    `backbone.{encoder,decoder}.model.*` keys with `.model` dropped (models/dlm/convert_e2d2.py)."""

    def __init__(self, cfg: Qwen3E2D2Config):
        super().__init__()
        self.cfg = cfg
        self.enc_layers, self.dec_layers = cfg.enc_layers, cfg.dec_layers
        self.kv_heads, self.head_dim = cfg.n_kv_heads, cfg.head_dim
        self.encoder = Stack(cfg, cfg.enc_layers)
        self.encoder.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.decoder = Stack(cfg, cfg.dec_layers)
        self.lm_head = None if cfg.tied else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.rotary = Rotary(cfg.head_dim, base=cfg.rope_theta)
        # A zero bias makes the output layer one Gemm on the 2-D rows that reads the embedding
        # as it is; a bias-less 3-D linear exports a transposed copy (the vocabulary table twice).
        self.register_buffer('logit_bias', torch.zeros(cfg.vocab_size), persistent=False)

    def encode(self, tokens, positions, attn_bias, past=None):
        """Clean tokens [B,L] -> (last hidden state after the final norm [B,L,D], per-layer (k, v))."""
        x = self.encoder.embed_tokens(tokens)
        cos, sin = self.rotary(positions)
        presents = []
        for i, layer in enumerate(self.encoder.layers):
            x, pres = layer(x, cos, sin, attn_bias, None if past is None else past[i])
            presents.append(pres)
        return self.encoder.norm(x), presents

    def context_kv(self, hidden, positions):
        """Each decoder layer's keys/values [B,Hkv,L,Dh] of the encoder states hidden [B,L,D]."""
        cos, sin = self.rotary(positions)
        return [layer.self_attn.kv(layer.input_layernorm(hidden), cos, sin) for layer in self.decoder.layers]

    def decode(self, tokens, positions, context, attn_bias):
        """Noisy tokens [B,L] against per-decoder-layer context (k, v) -> logits [B,L,V];
        attn_bias covers the keys [context ; tokens]."""
        x = self.encoder.embed_tokens(tokens)
        cos, sin = self.rotary(positions)
        for j, layer in enumerate(self.decoder.layers):
            x, _ = layer(x, cos, sin, attn_bias, context[j])
        B, L, D = x.shape[0], x.shape[1], self.cfg.d_model
        x = self.decoder.norm(x)
        w = self.encoder.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x.reshape(B * L, D), w, self.logit_bias).view(B, L, -1)

    def forward(self, xt, x0, block_size: int):
        """The training forward, uncached: logits [B,L,V] for noisy xt given clean x0."""
        B, L = x0.shape
        pos = torch.arange(L, device=x0.device)[None].expand(B, L)
        h, _ = self.encode(x0, pos, encoder_bias(L, block_size, x0.device))
        return self.decode(xt, pos, self.context_kv(h, pos), decoder_bias(L, block_size, x0.device))
