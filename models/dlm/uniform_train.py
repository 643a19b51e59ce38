"""The Duo and LDDM families as dlm.train plugs them in: build the network, compute the loss.

  duo     a time-conditioned DiT trained on the uniform-state NELBO (dlm/duo.py); optional Gaussian
          curriculum for the first --curriculum-steps steps.
  lddm    LDDM-M: a DiT with the latent pathway (dlm/lddm.py), MDLM's loss on self-conditioned
          logits (half the rows see the detached latent of a first pass).
  lddm-u  LDDM-U: Duo's time-conditioned DiT with the latent pathway, Duo's uniform-state NELBO
          (and curriculum) on self-conditioned logits, both passes reading the same sigma.
"""
from __future__ import annotations

import torch

from . import duo, lddm
from .dit import DiT, DiTConfig
from .mdlm import mdlm_loss

FAMILIES = ('duo', 'lddm', 'lddm-u')
# The families whose network reads the noise level and whose loss is Duo's.
UNIFORM = ('duo', 'lddm-u')


def build(family: str, cfg: DiTConfig) -> torch.nn.Module:
    if family == 'duo':
        return DiT(cfg)
    if family in ('lddm', 'lddm-u'):
        return lddm.Loopholing(DiT(cfg), cfg.d_model)
    raise ValueError(family)


class _Curriculum:
    """Counts training calls so the Gaussian curriculum stops after its step budget."""

    def __init__(self):
        self.calls = 0
        self.table: duo.GaussianCurriculum | None = None

    def next(self, vocab: int, steps: int) -> duo.GaussianCurriculum | None:
        self.calls += 1
        if self.calls > steps:
            return None
        if self.table is None:
            self.table = duo.GaussianCurriculum(vocab)
        return self.table


_curriculum = _Curriculum()


def uniform_denoiser(family: str, model: torch.nn.Module, gen: torch.Generator, p_latent: float = 0.5):
    """denoise(xt, sigma) -> logits for Duo's loss: the plain DiT, or LDDM-U's self-conditioned
    two passes (p_latent of the rows see the first pass's detached latent)."""
    if family == 'duo':
        return lambda xt, s: model(xt, s)
    return lambda xt, s: lddm.self_conditioned_logits(model, xt, s, p_latent=p_latent, generator=gen)


def vocab_of(model: torch.nn.Module) -> int:
    return (model.backbone if isinstance(model, lddm.Loopholing) else model).cfg.vocab_size


def loss(a, model: torch.nn.Module, x0: torch.Tensor, gen: torch.Generator, mask_id: int):
    """(loss to minimise, NELBO nats/token for logging), as dlm.mdlm.mdlm_loss returns."""
    if a.family in UNIFORM:
        V = vocab_of(model)
        cur = _curriculum.next(V, getattr(a, 'curriculum_steps', 0) or 0)
        t_min = max(a.t_min, 1e-3)
        value = duo.training_loss(uniform_denoiser(a.family, model, gen), x0, V, a.eps, t_min, gen, cur, t_max=a.t_max)
        return value, value.detach()
    fn = lambda xt: lddm.self_conditioned_logits(model, xt, None, generator=gen)  # noqa: E731
    return mdlm_loss(fn, x0, mask_id, gen, eps=a.eps, t_min=a.t_min, t_max=a.t_max, weighting=a.loss_weighting)


@torch.no_grad()
def val_nelbo(a, model: torch.nn.Module, x0: torch.Tensor, gen: torch.Generator, mask_id: int) -> float:
    """The validation bound (nats/token) over the whole noise range: Duo adds its prior term;
    LDDM-M and LDDM-U are scored with the latent of a first pass, as they decode."""
    if a.family in UNIFORM:
        V = vocab_of(model)
        value = duo.training_loss(uniform_denoiser(a.family, model, gen, p_latent=1.0), x0, V, a.eps, 1e-3, gen)
        return float(value) + duo.prior_kl(V, a.eps)
    fn = lambda xt: lddm.self_conditioned_logits(model, xt, None, p_latent=1.0, generator=gen)  # noqa: E731
    return float(mdlm_loss(fn, x0, mask_id, gen, eps=a.eps)[1])
