"""Masked diffusion (MDLM): log-linear schedule, SUBS parameterization, continuous-time NELBO."""
import torch
import torch.nn.functional as F


def loglinear_sigma(t: torch.Tensor, eps: float) -> torch.Tensor:
    """Total noise sigma(t) = -log(1 - (1 - eps) t); the mask probability is 1 - exp(-sigma)."""
    return -torch.log1p(-(1 - eps) * t)


def antithetic_t(batch: int, generator: torch.Generator, device, t_min=0.0, t_max=1.0):
    """Stratified times (one uniform offset, evenly spaced): lower-variance loss estimates."""
    u = torch.rand(1, generator=generator, device='cpu').to(device)
    t = (u + torch.arange(batch, device=device) / batch) % 1
    return t_min + (t_max - t_min) * t


def subs_log_probs(logits: torch.Tensor, xt: torch.Tensor, mask_id: int) -> torch.Tensor:
    """SUBS: never predict [MASK]; positions already clean keep their token with certainty."""
    logits = logits.float()
    logits[..., mask_id] = -1e9
    logp = logits.log_softmax(-1)
    clean = xt != mask_id
    if clean.any():
        onehot = torch.full_like(logp, -1e9)
        onehot.scatter_(-1, xt[..., None], 0.0)
        logp = torch.where(clean[..., None], onehot, logp)
    return logp


def masked_nelbo(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor, t: torch.Tensor,
                 sigma: torch.Tensor, eps: float, mask_id: int, weighting: str):
    """(loss, detached NELBO) from the network's logits on the noised input, under SUBS ([MASK]
    is never predicted). `t` and `sigma` are per sequence [B] or per position [B, L]."""
    B, L = x0.shape
    logits = logits.float()
    logits[..., mask_id] = -1e9
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x0.reshape(-1),
                          reduction='none').view(B, L)
    dsigma = (1 - eps) / (1 - (1 - eps) * t)
    w = dsigma / torch.expm1(sigma)
    if w.dim() == 1:
        w = w[:, None]
    nelbo = (nll * masked * w).sum() / (B * L)
    if weighting == 'elbo':
        loss = nelbo
    else:
        loss = (nll * masked).sum() / masked.sum().clamp(min=1)
    return loss, nelbo.detach()


def mdlm_loss(model, x0: torch.Tensor, mask_id: int, generator: torch.Generator, eps=1e-3,
              t_min=0.0, t_max=1.0, weighting='elbo'):
    """Returns (loss to minimise, NELBO in nats/token for logging).

    weighting 'elbo': the continuous-time bound, weight sigma'(t)/expm1(sigma(t)) on each masked
    position; 'unweighted': plain cross-entropy over masked positions (often better-behaved for
    small models; the NELBO is still what is reported)."""
    B, L = x0.shape
    t = antithetic_t(B, generator, x0.device, t_min, t_max)
    sigma = loglinear_sigma(t, eps)
    move = 1 - torch.exp(-sigma)
    r = torch.rand(B, L, generator=generator, device='cpu').to(x0.device)
    masked = r < move[:, None]
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return masked_nelbo(model(xt), x0, masked, t, sigma, eps, mask_id, weighting)


def ar_loss(model, x0: torch.Tensor):
    """Next-token cross-entropy for the causal judge (the model is built with a causal bias)."""
    logits = model(x0[:, :-1])
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x0[:, 1:].reshape(-1))
    return nll, nll.detach()
