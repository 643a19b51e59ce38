"""Uniform-state diffusion (Duo / UDLM): noise, loss and the reference sampler.

The forward process replaces each token, with probability 1 - alpha_t, by a token drawn
uniformly from the whole vocabulary (the prior is uniform, not a [MASK] state), so the
denoiser must be told how noisy its input is: it reads sigma = -log(alpha_t).

The loss is the continuous-time NELBO of that process. Writing xbar = V alpha x0 +
(1 - alpha) (so that q(x_t = j | x0) = xbar_j / V) and xbar_theta for the same with the
model's distribution in place of x0, the reverse process jumps from z = x_t to j != z at
rate (-alpha' / (alpha V)) xbar_j / xbar_z, and the NELBO integrand is the KL rate between
the true and the model's jump rates:

    (-alpha'/(alpha V)) [ V/xbar_theta_z - V/xbar_z
                          + sum_{j != z} (xbar_j / xbar_z) log(xbar_j xbar_theta_z / (xbar_z xbar_theta_j)) ]

It is zero exactly when the model recovers xbar, and the tests check it against the KL of
the discrete posteriors over a small step. Everything here is plain tensor code: it runs on
torch 1.13 CPU and torch 2.x CUDA alike.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def loglinear_alpha(t: torch.Tensor, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha_t = 1 - (1 - eps) t and its derivative (the schedule the engine uses)."""
    alpha = 1 - (1 - eps) * t
    return alpha, torch.full_like(t, -(1 - eps))


def sigma_of_alpha(alpha: torch.Tensor) -> torch.Tensor:
    """The network's time input."""
    return -torch.log(alpha)


def q_xt(x0: torch.Tensor, alpha: torch.Tensor, vocab_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt x0 [B, L]: each token is resampled uniformly with probability 1 - alpha ([B, 1]).

    Draws come from a CPU generator (the trainer's, seeded) and move to x0's device."""
    move = torch.rand(x0.shape, generator=generator).to(x0.device) < (1 - alpha)
    noise = torch.randint(0, vocab_size, x0.shape, generator=generator).to(x0.device)
    return torch.where(move, noise, x0)


def sample_t(batch: int, device: torch.device, t_min: float = 1e-3, generator: torch.Generator | None = None,
             t_max: float = 1.0) -> torch.Tensor:
    """Antithetic times in [t_min, t_max]: one uniform offset, evenly spread, lowers the loss's variance."""
    u = torch.rand(1, generator=generator).to(device)
    t = (u + torch.arange(batch, device=device) / batch) % 1
    return t_min + (t_max - t_min) * t


def nelbo_per_token(logits: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, dalpha: torch.Tensor) -> torch.Tensor:
    """The continuous-time NELBO integrand per token [B, L] (nats), from raw logits [B, L, V].

    alpha and dalpha are [B, 1]. Computed in float32 (float64 if the logits are) whatever the
    autocast dtype, since the uniform term (1 - alpha) is tiny next to alpha V near t = 0.
    """
    V = logits.shape[-1]
    dt = torch.float64 if logits.dtype == torch.float64 else torch.float32
    a = alpha.to(dt).unsqueeze(-1)  # [B, 1, 1]
    p = logits.to(dt).softmax(-1)
    xbar_theta = V * a * p + (1 - a)
    log_xbar_theta = xbar_theta.log()
    a2 = a.squeeze(-1)  # [B, 1]
    same = (xt == x0).float()
    one_m_a = (1 - a2).expand_as(same)
    # True xbar at z = x_t and the constant sum_{j != z} xbar_j log xbar_j.
    xbar_z = (1 - a2) + V * a2 * same
    big = V * a2 + (1 - a2)
    log_small = torch.log(one_m_a)
    ent_same = (V - 1) * one_m_a * log_small
    ent_diff = (V - 2) * one_m_a * log_small + big * torch.log(big)
    const = same * ent_same + (1 - same) * ent_diff
    lt_z = log_xbar_theta.gather(-1, xt.unsqueeze(-1)).squeeze(-1)
    lt_x = log_xbar_theta.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    # sum_{j != z} xbar_j log xbar_theta_j: uniform part plus the extra mass on x0 when x0 != z.
    cross = one_m_a * (log_xbar_theta.sum(-1) - lt_z) + (1 - same) * V * a2 * lt_x
    s = const - (V - xbar_z) * (torch.log(xbar_z) - lt_z) - cross
    rate = V / lt_z.exp() - V / xbar_z + s / xbar_z
    coeff = -dalpha.to(dt) / (V * a2)
    return coeff * rate


def posterior(p_x0: torch.Tensor, xt: torch.Tensor, alpha_s: torch.Tensor, alpha_t: torch.Tensor) -> torch.Tensor:
    """q(x_s | x_t, x0 = p_x0) for the uniform process, [..., V]; alphas broadcast to [..., 1].

    The same formula as engine/samplers/duo-posterior.ts; float64 in, float64 out.
    """
    V = p_x0.shape[-1]
    a_ts = alpha_t / alpha_s
    onehot = F.one_hot(xt, V).to(p_x0.dtype)
    p_z = p_x0.gather(-1, xt.unsqueeze(-1))
    num = (alpha_t * V * p_z + (a_ts - alpha_t)) * onehot + (alpha_s - alpha_t) * p_x0 + (1 - a_ts) * (1 - alpha_s) / V
    return num / (alpha_t * V * p_z + (1 - alpha_t))


@torch.no_grad()
def sample(denoise, batch: int, length: int, vocab_size: int, steps: int, eps: float = 1e-3, greedy_tail: bool = False,
           top_p: float = 1.0, generator: torch.Generator | None = None, device: torch.device | str = 'cpu',
           t_min: float = 1e-5) -> torch.Tensor:
    """Reference ancestral sampler, the engine's 'duo' / 'duo_greedy' in PyTorch.

    denoise(tokens [B, L], sigma [B]) -> logits [B, L, V]. N steps cost N calls; the last
    goes to alpha = 1 (or takes the arg-max on the greedy tail).
    """
    x = torch.randint(0, vocab_size, (batch, length), device=device, generator=generator)
    grid = [1.0] if steps == 1 else [1 - (1 - t_min) * k / (steps - 1) for k in range(steps)]
    for k, t in enumerate(grid):
        final = k == steps - 1
        a_t = 1 - (1 - eps) * t
        a_s = 1.0 if final else 1 - (1 - eps) * grid[k + 1]
        sigma = torch.full((batch,), -math.log(a_t), device=device)
        logits = denoise(x, sigma).double()
        if final and greedy_tail:
            x = logits.argmax(-1)
            break
        p = logits.softmax(-1)
        if top_p < 1:
            p = nucleus(p, top_p)
        q = posterior(p, x, torch.tensor(a_s, dtype=torch.float64), torch.tensor(a_t, dtype=torch.float64))
        x = torch.multinomial(q.reshape(-1, vocab_size), 1, generator=generator).reshape(batch, length)
    return x


def nucleus(p: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p; renormalise."""
    sp, idx = p.sort(-1, descending=True)
    before = sp.cumsum(-1) - sp
    keep = before < top_p
    keep[..., 0] = True
    sp = sp * keep
    return torch.zeros_like(p).scatter(-1, idx, sp / sp.sum(-1, keepdim=True))


def prior_kl(vocab_size: int, eps: float = 1e-3) -> float:
    """KL(q(x_1 | x0) || uniform) per token: the NELBO's prior term (alpha_1 = eps)."""
    V, a = vocab_size, eps
    hit = a + (1 - a) / V
    miss = (1 - a) / V
    return hit * math.log(hit * V) + (V - 1) * miss * math.log(miss * V)


class GaussianCurriculum:
    """Duo's curriculum: noise drawn through the underlying Gaussian diffusion.

    The arg-max of a Gaussian latent alpha_g onehot(x0) + sigma_g noise (alpha_g^2 =
    sigmoid(-gamma), sigma_g^2 = sigmoid(gamma)) is a uniform-state corruption of x0 with
    alpha(gamma) = (V P - 1) / (V - 1), P = E_z[Phi(z + exp(-gamma/2))^(V-1)] the chance the
    arg-max keeps x0. Training first on gamma in [gamma_min, gamma_max] (the Duo paper's
    -3.5 .. -1.75) keeps t away from the high-variance ends. This is the curriculum in its
    zero-temperature limit (the Duo LM1B runs use temperature 1e-3): the network sees the hard
    arg-max, which is exactly uniform corruption at alpha(gamma); the soft relaxation is not
    implemented. P is tabulated once by quadrature; alpha and d alpha / dt interpolate it.
    """

    def __init__(self, vocab_size: int, gamma_min: float = -3.5, gamma_max: float = -1.75, points: int = 1025):
        self.gamma_min, self.gamma_max = gamma_min, gamma_max
        gammas = torch.linspace(gamma_min, gamma_max, points, dtype=torch.float64)
        z = torch.linspace(-12, 12, 4001, dtype=torch.float64)
        phi = torch.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
        mu = torch.exp(-gammas / 2)[:, None]
        keep = torch.trapezoid(phi * torch.exp((vocab_size - 1) * torch.special.log_ndtr(z + mu)), z, dim=-1)
        self.alphas = ((vocab_size * keep - 1) / (vocab_size - 1)).float()
        self.points = points

    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha and d alpha / dt at t in [0, 1] (t = 0 is gamma_min, the clean end)."""
        table = self.alphas.to(t.device)
        pos = t.clamp(0, 1) * (self.points - 1)
        i = pos.floor().long().clamp(max=self.points - 2)
        w = pos - i
        lo, hi = table[i], table[i + 1]
        return lo + w * (hi - lo), (hi - lo) * (self.points - 1)


def training_loss(denoise, x0: torch.Tensor, vocab_size: int, eps: float = 1e-3, t_min: float = 1e-3,
                  generator: torch.Generator | None = None, curriculum: GaussianCurriculum | None = None,
                  t_max: float = 1.0) -> torch.Tensor:
    """Mean NELBO integrand over a batch x0 [B, L] at antithetic times (nats per token).

    denoise(xt [B, L], sigma [B]) -> logits [B, L, V]. Averaged over t in [t_min, 1], this
    plus prior_kl() is the validation NELBO bound. With a curriculum the noise comes from
    its band instead (training only: it is not the bound).
    """
    t = sample_t(x0.shape[0], x0.device, t_min, generator, t_max)
    if curriculum is not None:
        alpha, dalpha = curriculum(t[:, None])
    else:
        alpha, dalpha = loglinear_alpha(t[:, None], eps)
    xt = q_xt(x0, alpha, vocab_size, generator)
    logits = denoise(xt, sigma_of_alpha(alpha[:, 0]))
    return nelbo_per_token(logits, xt, x0, alpha, dalpha).mean()
