"""LDDM latent pathway: zero LayerNorm is the base model, a latent changes the output,
self-conditioning trains the pathway."""
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlm import lddm  # noqa: E402


class HookedTiny(nn.Module):
    """The smallest network with the backbone's hooks (extra_embed, return_hidden)."""

    def __init__(self, V=12, D=8):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.mix = nn.Linear(D, D)
        self.out = nn.Linear(D, V)

    def forward(self, tokens, sigma, extra_embed=None, return_hidden=False):
        h = self.emb(tokens) + sigma[:, None, None]
        if extra_embed is not None:
            h = h + extra_embed
        h = torch.tanh(self.mix(h + h.mean(1, keepdim=True)))
        logits = self.out(h)
        return (logits, h) if return_hidden else logits


def test_zero_layernorm_is_exactly_the_base_model():
    torch.manual_seed(0)
    base = HookedTiny()
    model = lddm.Loopholing(base, 8)
    x = torch.randint(0, 12, (2, 6))
    sigma = torch.rand(2)
    for latent in (None, torch.randn(2, 6, 8) * 5):
        logits, hidden = model(x, sigma, latent)
        assert torch.equal(logits, base(x, sigma))
        assert hidden.shape == (2, 6, 8)


def test_a_trained_pathway_changes_the_output():
    torch.manual_seed(1)
    model = lddm.Loopholing(HookedTiny(), 8)
    with torch.no_grad():
        model.latent_input.norm.weight.fill_(1.0)
    x = torch.randint(0, 12, (1, 5))
    sigma = torch.zeros(1)
    a, h = model(x, sigma, None)
    b, _ = model(x, sigma, h)
    assert (a - b).abs().max() > 1e-3


def test_self_conditioning_trains_the_latent_pathway():
    torch.manual_seed(2)
    model = lddm.Loopholing(HookedTiny(), 8)
    x0 = torch.randint(0, 12, (4, 6))
    logits = lddm.self_conditioned_logits(model, x0, torch.rand(4), p_latent=1.0)
    nn.functional.cross_entropy(logits.reshape(-1, 12), x0.reshape(-1)).backward()
    assert model.latent_input.norm.weight.grad.abs().sum() > 0
    model.zero_grad()
    logits = lddm.self_conditioned_logits(model, x0, torch.rand(4), p_latent=0.0)
    nn.functional.cross_entropy(logits.reshape(-1, 12), x0.reshape(-1)).backward()
    # A zero latent normalises to zero: only the bias can learn from the first pass.
    assert model.latent_input.norm.weight.grad.abs().sum() == 0


def test_zero_layernorm_on_the_dit_is_exactly_the_dit():
    from dlm.dit import DiT, DiTConfig
    torch.manual_seed(3)
    dit = DiT(DiTConfig(vocab_size=40, d_model=32, n_layers=2, n_heads=4, cond_dim=16, max_length=32)).eval()
    with torch.no_grad():
        for p in dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    model = lddm.Loopholing(dit, 32).eval()
    x = torch.randint(0, 40, (2, 12))
    with torch.no_grad():
        base = dit(x)
        logits, hidden = model(x, None, torch.randn(2, 12, 32) * 3)
        assert torch.equal(logits, base)
        model.latent_input.norm.weight.fill_(1.0)
        moved, _ = model(x, None, hidden)
    assert (moved - base).abs().max() > 1e-3
