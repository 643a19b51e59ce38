"""XLNet as an AS-ARM graph, and a converter for checkpoints in the Hugging Face XLNet layout
(XLNetLMHeadModel: config.json + pytorch_model.bin or model.safetensors; the published AS-ARM,
therealgabeguo/ASARM, is a fine-tuned xlnet-base-cased). Users bring the files; nothing is
downloaded. The tokenizer is the checkpoint's SentencePiece spiece.model (converted by
dlm.asarm_spm) or a tokenizers-format tokenizer.json.

  python -m dlm.asarm_xlnet --checkpoint DIR --tokenizer DIR/spiece.model --out models/zoo/asarm-xlnet
      [--mask-id N] [--eos-id N] [--max-length 512] [--fp16-weights]

The graph keeps the asarm contract (tokens, ranks, attention_mask -> logits of the query
stream). XLNet's permutation mask is built from the ranks: the query stream of i sees the
content of j iff rank_j < rank_i; the content stream of i sees j iff rank_j < rank_i or j = i
(XLNet's own rule). Relative positions are XLNet's sinusoidal encoding of i - j with the
per-layer biases r_w, r_r; a single segment, so the segment term is left out, as
XLNetLMHeadModel does when no token_type_ids are given.

Not checked here: logits against the Hugging Face implementation (no transformers package on
this machine). The tests check the masking rules, ONNX parity with this module, and the
converter's key handling on a checkpoint of the published layout with random weights.
"""
import argparse
import json
import math
import os
import shutil
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import manifest as mf
from .asarm_export import INPUTS
from .convert_mdlm import CheckpointError, load_state_dict
from .export import OPSET, fp16_initializers

NEG = -1e30


@dataclass
class XLNetConfig:
    vocab_size: int
    d_model: int = 768
    n_layer: int = 12
    n_head: int = 12
    d_head: int = 64
    d_inner: int = 3072
    layer_norm_eps: float = 1e-12
    ff_activation: str = 'gelu'

    @classmethod
    def from_hf(cls, cfg: dict) -> 'XLNetConfig':
        if cfg.get('attn_type', 'bi') != 'bi':
            raise CheckpointError(f"config.json: attn_type {cfg.get('attn_type')!r}: only 'bi' is converted")
        if cfg.get('ff_activation', 'gelu') not in ('gelu', 'relu'):
            raise CheckpointError(f"config.json: ff_activation {cfg.get('ff_activation')!r} is not converted")
        keys = ('vocab_size', 'd_model', 'n_layer', 'n_head', 'd_head', 'd_inner', 'layer_norm_eps', 'ff_activation')
        missing = [k for k in keys[:6] if k not in cfg]
        if missing:
            raise CheckpointError(f'config.json: missing {", ".join(missing)}')
        return cls(**{k: cfg[k] for k in keys if k in cfg})


class RelAttn(nn.Module):
    def __init__(self, c: XLNetConfig):
        super().__init__()
        shape = (c.d_model, c.n_head, c.d_head)
        self.q, self.k, self.v, self.o, self.r = (nn.Parameter(torch.zeros(shape)) for _ in range(5))
        self.r_w_bias = nn.Parameter(torch.zeros(c.n_head, c.d_head))
        self.r_r_bias = nn.Parameter(torch.zeros(c.n_head, c.d_head))
        self.layer_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.scale = 1.0 / math.sqrt(c.d_head)

    def stream(self, x, k, v, kr, rel_index, bias):
        """One stream's attention over the content keys: x [B,L,D] -> [B,L,D]."""
        q = torch.einsum('bld,dnh->bnlh', x, self.q)
        ac = torch.einsum('bnih,bnjh->bnij', q + self.r_w_bias[None, :, None], k)
        bd_all = torch.einsum('bnih,pnh->bnip', q + self.r_r_bias[None, :, None], kr)   # [B,N,L,2L]
        bd = torch.gather(bd_all, 3, rel_index.expand(bd_all.shape[0], bd_all.shape[1], -1, -1))
        s = (ac + bd) * self.scale + bias
        o = torch.einsum('bnij,bnjh->bnih', torch.softmax(s, dim=-1), v)
        return self.layer_norm(torch.einsum('bnlh,dnh->bld', o, self.o) + x)


class FF(nn.Module):
    def __init__(self, c: XLNetConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.layer_1 = nn.Linear(c.d_model, c.d_inner)
        self.layer_2 = nn.Linear(c.d_inner, c.d_model)
        self.act = F.gelu if c.ff_activation == 'gelu' else F.relu

    def forward(self, x):
        return self.layer_norm(x + self.layer_2(self.act(self.layer_1(x))))


class Layer(nn.Module):
    def __init__(self, c: XLNetConfig):
        super().__init__()
        self.rel_attn = RelAttn(c)
        self.ff = FF(c)


class XLNetAsarm(nn.Module):
    """Hugging Face XLNet parameter names (under `transformer.`, plus `lm_loss.bias`)."""

    def __init__(self, c: XLNetConfig):
        super().__init__()
        self.cfg = c
        self.word_embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.mask_emb = nn.Parameter(torch.zeros(1, 1, c.d_model))
        self.layer = nn.ModuleList([Layer(c) for _ in range(c.n_layer)])
        self.lm_bias = nn.Parameter(torch.zeros(c.vocab_size))

    def forward(self, tokens, ranks, attention_mask):
        B, L = tokens.shape
        d = self.cfg.d_model
        keep = attention_mask[:, None, :] > 0                                  # keys [B,1,L]
        r = ranks[:, :, None]
        rk = ranks[:, None, :]
        i = torch.arange(L, device=tokens.device)
        eye = (i[:, None] == i[None, :])[None]
        # A query that sees no key (the first in the order) attends evenly to every key, as in
        # XLNet; padding sits far below hidden keys so that this does not depend on the batch.
        hidden = torch.where(keep, torch.full((), NEG, device=tokens.device), torch.full((), 2 * NEG, device=tokens.device))
        zero = torch.zeros((), device=tokens.device)
        content_bias = torch.where(((rk < r) | eye) & keep, zero, hidden)[:, None]
        query_bias = torch.where((rk < r) & keep, zero, hidden)[:, None]
        # Sinusoidal encoding of the relative distance i - j, for the distances L .. -L+1.
        pos = torch.arange(L, -L, -1.0, device=tokens.device)
        inv = torch.exp(torch.arange(0, d, 2.0, device=tokens.device) * (-math.log(10000.0) / d))
        f = pos[:, None] * inv[None]
        pos_emb = torch.cat([f.sin(), f.cos()], dim=-1)                        # [2L, D]
        rel_index = (L - i[:, None] + i[None, :])[None, None]                  # [1,1,L,L]
        h = self.word_embedding(tokens)
        g = self.mask_emb.expand(B, L, d)
        for lyr in self.layer:
            a = lyr.rel_attn
            k = torch.einsum('bld,dnh->bnlh', h, a.k)
            v = torch.einsum('bld,dnh->bnlh', h, a.v)
            kr = torch.einsum('pd,dnh->pnh', pos_emb, a.r)
            h_new = a.stream(h, k, v, kr, rel_index, content_bias)
            g = lyr.ff(a.stream(g, k, v, kr, rel_index, query_bias))
            h = lyr.ff(h_new)
        return g @ self.word_embedding.weight.t() + self.lm_bias


def map_state_dict(sd: dict, c: XLNetConfig) -> dict:
    """HF XLNetLMHeadModel keys -> XLNetAsarm keys; errors name the missing or misshapen key."""
    out = {}
    want = XLNetAsarm(c).state_dict()
    for name, ref in want.items():
        src = 'lm_loss.bias' if name == 'lm_bias' else f'transformer.{name}'
        if src not in sd:
            raise CheckpointError(f'checkpoint: missing {src} (expected shape {list(ref.shape)})')
        t = sd[src]
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f'checkpoint: {src} has shape {list(t.shape)}, config.json implies {list(ref.shape)}')
        out[name] = t.float()
    if 'lm_loss.weight' in sd and not torch.equal(sd['lm_loss.weight'].float(), out['word_embedding.weight']):
        raise CheckpointError('checkpoint: lm_loss.weight differs from transformer.word_embedding.weight '
                              '(an untied head is not converted)')
    return out


def special_ids(tok: dict) -> dict:
    """[MASK]/EOS/BOS/PAD ids of a tokenizer.json: the added tokens first, then the vocabulary
    (a dict for BPE and WordPiece, a list of [piece, score] for SentencePiece's Unigram), in
    XLNet's spelling (<mask>, </s>, <s>, <pad>) or ours ([MASK], [EOS], [BOS], [PAD])."""
    ids = {t['content']: t['id'] for t in tok.get('added_tokens', [])}
    vocab = tok.get('model', {}).get('vocab', {})
    if isinstance(vocab, list):
        vocab = {piece[0]: i for i, piece in enumerate(vocab)}

    def find(*names):
        for n in names:
            if n in ids:
                return ids[n]
            if n in vocab:
                return vocab[n]
        return None
    return {'mask': find('<mask>', '[MASK]'), 'bos': find('<s>', '[BOS]'), 'eos': find('</s>', '[EOS]'),
            'pad': find('<pad>', '[PAD]')}


def export_graph(model: XLNetAsarm, path: str, example_len=8):
    tokens = torch.zeros(2, example_len, dtype=torch.long)
    ranks = torch.arange(example_len)[None].repeat(2, 1)
    mask = torch.ones(2, example_len, dtype=torch.long)
    dyn = {n: {0: 'batch', 1: 'length'} for n in INPUTS + ['logits']}
    with torch.no_grad():
        torch.onnx.export(model, (tokens, ranks, mask), path, opset_version=OPSET,
                          input_names=INPUTS, output_names=['logits'], dynamic_axes=dyn)


def convert(ckpt: str, tokenizer: str, out: str, name: str, mask_id, eos_id, max_length: int, fp16: bool):
    cfg_path = os.path.join(ckpt, 'config.json')
    if not os.path.exists(cfg_path):
        raise CheckpointError(f'{ckpt}: no config.json (a Hugging Face XLNet checkpoint folder holds config.json and the weights)')
    c = XLNetConfig.from_hf(json.load(open(cfg_path)))
    model = XLNetAsarm(c)
    model.load_state_dict(map_state_dict(load_state_dict(ckpt), c))
    model.eval()
    os.makedirs(out, exist_ok=True)
    tok_out = os.path.join(out, 'tokenizer.json')
    if tokenizer.endswith('.model'):  # SentencePiece, as the checkpoint ships it
        from .asarm_spm import convert as convert_spm
        convert_spm(tokenizer, tok_out)
    else:
        shutil.copyfile(tokenizer, tok_out)
    special = special_ids(json.load(open(tok_out)))
    if mask_id is not None:
        special['mask'] = mask_id
    if eos_id is not None:
        special['eos'] = eos_id
    if special.get('mask') is None:
        raise CheckpointError('tokenizer.json has no [MASK]/<mask> token: pass --mask-id (it marks holes and undecoded positions)')
    graph = os.path.join(out, 'asarm.onnx')
    export_graph(model, graph)
    if fp16:
        fp16_initializers(graph)
    n_params = sum(p.numel() for p in model.parameters())
    mf.write(out, {
        'name': name, 'family': 'asarm',
        'description': 'XLNet any-subset autoregressive model converted from a Hugging Face checkpoint',
        'tokenizer': 'tokenizer.json', 'vocab_size': c.vocab_size, 'max_length': max_length,
        'special_tokens': special,
        'architecture': {'d_model': c.d_model, 'n_layers': c.n_layer, 'n_heads': c.n_head, 'head_dim': c.d_head,
                         'n_params': n_params, 'd_inner': c.d_inner, 'backbone': 'xlnet'},
        'graphs': {'asarm': {'file': 'asarm.onnx', 'inputs': INPUTS, 'outputs': ['logits']}},
        'samplers': ['assd'], 'defaults': {'sampler': 'assd', 'speculative_k': 5, 'max_tokens': 64},
        'provenance': {'converted_from': os.path.abspath(ckpt), 'config': asdict(c)},
    })
    return graph


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--tokenizer', required=True, help="tokenizer.json (tokenizers format) or the checkpoint's spiece.model")
    ap.add_argument('--out', required=True)
    ap.add_argument('--name', default=None)
    ap.add_argument('--mask-id', type=int, default=None)
    ap.add_argument('--eos-id', type=int, default=None)
    ap.add_argument('--max-length', type=int, default=512)
    ap.add_argument('--fp16-weights', action='store_true')
    a = ap.parse_args(argv)
    graph = convert(a.checkpoint, a.tokenizer, a.out, a.name or os.path.basename(os.path.abspath(a.out)),
                    a.mask_id, a.eos_id, a.max_length, a.fp16_weights)
    print(json.dumps({'out': a.out, 'graph': graph, 'bytes': os.path.getsize(graph)}))


if __name__ == '__main__':
    main()
