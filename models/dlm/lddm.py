"""Loopholing (LDDM): carry the denoiser's last hidden state from one step to the next.

A masked or uniform denoiser throws away everything but one sampled token per position
between steps. LDDM keeps the network's last hidden state h (the input of its output
layer) and adds LayerNorm(h_prev) to the token embeddings at the next step. The LayerNorm
starts at zero (weight and bias), so an untrained pathway is exactly the base model.

Training is self-conditioning: a first pass with a zero latent, a second fed with the
first pass's hidden state, detached. Half the batch trains the second pass, half the
first, so the first sampling step (which has no latent yet) is trained too.

The backbone's hooks (models/dlm/dit.py): forward(..., extra_embed=E, return_hidden=True)
adds E [B, L, D] to the token embeddings and returns (logits, hidden).
"""
from __future__ import annotations

import torch
from torch import nn


class LatentInput(nn.Module):
    """LayerNorm(latent), zero-initialised so that it contributes nothing until trained."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        nn.init.zeros_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.norm(latent)


class Loopholing(nn.Module):
    """A backbone plus the latent pathway: (tokens, sigma, latent_in) -> (logits, latent_out)."""

    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone = backbone
        self.latent_input = LatentInput(dim)
        self.dim = dim

    def forward(self, tokens: torch.Tensor, sigma: torch.Tensor | None = None, latent_in: torch.Tensor | None = None,
                attn_bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if latent_in is None:
            latent_in = torch.zeros(*tokens.shape, self.dim, device=tokens.device)
        add = self.latent_input(latent_in)
        kwargs = {} if attn_bias is None else {'attn_bias': attn_bias}
        logits, hidden = self.backbone(tokens, sigma, extra_embed=add, return_hidden=True, **kwargs)
        return logits, hidden.float()


def self_conditioned_logits(model: Loopholing, xt: torch.Tensor, sigma: torch.Tensor | None,
                            p_latent: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training forward: rows drawn with probability p_latent see the detached latent of a
    first, gradient-free pass over the same noisy tokens; the others see a zero latent."""
    B = xt.shape[0]
    use = (torch.rand(B, generator=generator) < p_latent).to(xt.device)
    latent = torch.zeros(*xt.shape, model.dim, device=xt.device)
    if bool(use.any()):
        with torch.no_grad():
            _, h = model(xt, sigma, latent)
        latent = torch.where(use[:, None, None], h.detach().float(), latent)
    logits, _ = model(xt, sigma, latent)
    return logits
