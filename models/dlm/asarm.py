"""Any-subset autoregressive model (AS-ARM): an XLNet-style two-stream transformer whose
generation order is an input.

`ranks` [B,L] gives each position its place in the order. Two streams share every weight:
the content stream of position i (its own token, like a normal encoder) sees j iff
rank_j <= rank_i; the query stream of i (a learned vector plus i's position, never its token)
sees the content of j iff rank_j < rank_i, and predicts token i. Hence one graph serves ASSD's
two calls: positions that share a rank predict independently from the context (the draft),
distinct ranks give the order-causal chain (the verify).

A learned sink slot, visible to everyone, sits before the sequence: a query whose rank is the
smallest would otherwise see no key at all, and a softmax over nothing is NaN (or, with a
finite mask bias, a uniform average that leaks every hidden token).

Positions enter through rotary embeddings on queries and keys. Attention is written out for
ONNX export (torch 1.13), with SDPA on torch 2.x outside export."""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e9
_HAS_SDPA = hasattr(F, 'scaled_dot_product_attention')


@dataclass
class AsarmConfig:
    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    max_length: int = 256
    mlp_ratio: int = 4
    dropout: float = 0.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


def rotary(positions: torch.Tensor, head_dim: int):
    """positions [B,N] -> cos, sin [B,1,N,head_dim] (rotate-half layout)."""
    inv = 1.0 / 10000.0 ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    f = positions.float()[..., None] * inv
    emb = torch.cat([f, f], dim=-1)[:, None]
    return emb.cos(), emb.sin()


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def two_stream_bias(ranks: torch.Tensor, attention_mask: torch.Tensor):
    """ranks, attention_mask [B,L] -> additive bias [B,1,(L+1)+L,L+1]: rows are the content
    queries (sink first) then the query-stream queries; columns are the content keys."""
    B = ranks.shape[0]
    r = ranks.float()
    sink = torch.full((B, 1), -1.0, device=ranks.device)
    rk = torch.cat([sink, r], dim=1)                                   # keys  [B,L+1]
    keep = torch.cat([torch.ones_like(sink), attention_mask.float()], dim=1)
    content = rk[:, :, None] >= rk[:, None, :]                         # [B,L+1,L+1]
    query = r[:, :, None] > rk[:, None, :]                             # [B,L,L+1]
    vis = torch.cat([content, query], dim=1) & (keep[:, None, :] > 0.5)
    return torch.where(vis, torch.zeros((), device=ranks.device),
                       torch.full((), NEG, device=ranks.device))[:, None]


class Block(nn.Module):
    def __init__(self, cfg: AsarmConfig):
        super().__init__()
        d = cfg.d_model
        self.h, self.dh, self.d = cfg.n_heads, cfg.head_dim, d
        self.ln1 = nn.LayerNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, 2 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate='tanh'),
                                 nn.Linear(cfg.mlp_ratio * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, n_keys, cos_q, sin_q, cos_k, sin_k, bias):
        """x [B, N, D]: the content stream (first n_keys rows) then the query stream. Keys and
        values come from the content stream only."""
        B, N, _ = x.shape
        H, Dh = self.h, self.dh
        a = self.ln1(x)
        q = rope(self.q(a).view(B, N, H, Dh).transpose(1, 2), cos_q, sin_q)
        kv = self.kv(a[:, :n_keys]).view(B, n_keys, 2, H, Dh).permute(2, 0, 3, 1, 4)
        k, v = rope(kv[0], cos_k, sin_k), kv[1]
        if _HAS_SDPA and not torch.onnx.is_in_onnx_export():
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        else:
            s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(Dh)) + bias
            o = torch.matmul(torch.softmax(s.float(), dim=-1).type_as(v), v)
        x = x + self.drop(self.out(o.transpose(1, 2).reshape(B, N, self.d)))
        return x + self.drop(self.mlp(self.ln2(x)))


class Asarm(nn.Module):
    def __init__(self, cfg: AsarmConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.sink = nn.Parameter(torch.zeros(d))
        self.query = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.sink, std=0.02)
        nn.init.normal_(self.query, std=0.02)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size)

    def forward(self, tokens, ranks, attention_mask=None):
        """tokens, ranks [B,L] int64 (attention_mask [B,L], 1 real) -> query-stream logits [B,L,V]."""
        return self.head(self.ln_f(self.query_stream(tokens, ranks, attention_mask)))

    def query_stream(self, tokens, ranks, attention_mask=None):
        """The query stream's last hidden states [B,L,D] (before the final norm and the head)."""
        B, L = tokens.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(tokens)
        bias = two_stream_bias(ranks, attention_mask)
        pos = torch.arange(L + 1, device=tokens.device)[None].expand(B, L + 1)
        cos_k, sin_k = rotary(pos, self.cfg.head_dim)
        qpos = torch.cat([pos, pos[:, 1:]], dim=1)
        cos_q, sin_q = rotary(qpos, self.cfg.head_dim)
        content = torch.cat([self.sink.expand(B, 1, -1), self.embed(tokens)], dim=1)
        x = torch.cat([content, self.query.expand(B, L, -1)], dim=1)
        for blk in self.blocks:
            x = blk(x, L + 1, cos_q, sin_q, cos_k, sin_k, bias)
        return x[:, L + 1:]


def any_subset_ranks(valid: torch.Tensor, gen: torch.Generator):
    """The any-subset objective's orders for a batch [B,L] of training windows: each row draws
    a context share u ~ U(0,1); each position joins the context (rank 0) with probability u;
    the rest get a uniformly random order 1..m. Returns (ranks, target mask)."""
    B, L = valid.shape
    u = torch.rand(B, 1, generator=gen)
    ctx = torch.rand(B, L, generator=gen) < u
    ctx[:, 0] &= ~(ctx.all(dim=1))  # keep at least one target per row
    keys = torch.rand(B, L, generator=gen) + ctx.float() * -2.0  # context sorts first
    order = keys.argsort(dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(L).expand(B, L).contiguous())
    n_ctx = ctx.sum(dim=1, keepdim=True)
    ranks = torch.where(ctx, torch.zeros_like(ranks), ranks - n_ctx + 1)
    return ranks.to(valid.device), (~ctx).to(valid.device)


def asarm_loss(model: Asarm, x0: torch.Tensor, gen: torch.Generator):
    """Cross-entropy of the query stream on the non-context positions (nats/token)."""
    ranks, target = any_subset_ranks(x0, gen)
    # The head (V wide) is most of the cost: run it on the target positions only.
    h = model.query_stream(x0, ranks)[target]
    logits = model.head(model.ln_f(h))
    loss = F.cross_entropy(logits.float(), x0[target])
    return loss, loss.detach()


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
