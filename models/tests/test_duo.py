"""Duo: the loss against the KL of the discrete posteriors, the posterior against Bayes."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlm import duo  # noqa: E402


def brute_posterior(p, xt, a_s, a_t):
    V = p.shape[0]
    eye = torch.eye(V, dtype=torch.float64)
    ks = a_s * eye + (1 - a_s) / V
    kts = (a_t / a_s) * eye + (1 - a_t / a_s) / V
    joint = (p[:, None] * ks).sum(0) * kts[:, xt]
    return joint / joint.sum()


def test_posterior_matches_bayes_enumeration():
    g = torch.Generator().manual_seed(0)
    for V in (2, 3, 6):
        for a_s, a_t in ((0.9, 0.4), (1.0, 0.2), (0.3, 0.01)):
            p = torch.rand(V, generator=g, dtype=torch.float64) ** 3 + 1e-3
            p = p / p.sum()
            for xt in range(V):
                q = duo.posterior(p, torch.tensor(xt), torch.tensor(a_s, dtype=torch.float64), torch.tensor(a_t, dtype=torch.float64))
                assert abs(q.sum().item() - 1) < 1e-12
                assert torch.allclose(q, brute_posterior(p, xt, a_s, a_t), atol=1e-12)


def kl(q, p):
    m = q > 0
    return (q[m] * (q[m] / p[m]).log()).sum()


def test_loss_is_the_kl_rate_of_the_posteriors():
    """NELBO integrand = lim KL(q(x_s|x_t,x0) || q(x_s|x_t,x_theta)) / dt, checked at dt = 1e-7."""
    g = torch.Generator().manual_seed(1)
    V, eps, dt = 7, 1e-3, 1e-7
    for t in (0.05, 0.3, 0.8, 0.999):
        logits = torch.randn(1, 4, V, generator=g, dtype=torch.float64) * 2
        x0 = torch.tensor([[1, 3, 3, 0]])
        xt = torch.tensor([[1, 2, 3, 5]])  # x_t equal to x0 at some positions, not at others
        a_t, da = duo.loglinear_alpha(torch.tensor([[t]], dtype=torch.float64), eps)
        a_s, _ = duo.loglinear_alpha(torch.tensor([[t - dt]], dtype=torch.float64), eps)
        loss = duo.nelbo_per_token(logits, xt, x0, a_t, da)
        p = logits.softmax(-1)
        for i in range(4):
            true = duo.posterior(torch.nn.functional.one_hot(x0[0, i], V).double(), xt[0, i], a_s[0, 0], a_t[0, 0])
            model = duo.posterior(p[0, i], xt[0, i], a_s[0, 0], a_t[0, 0])
            rate = kl(true, model).item() / dt
            assert abs(loss[0, i].item() - rate) < 1e-4 * max(1.0, rate), (t, i, loss[0, i].item(), rate)


def test_loss_is_zero_for_a_perfect_denoiser_and_positive_otherwise():
    V = 11
    x0 = torch.tensor([[3, 4, 5, 10]])
    xt = torch.tensor([[3, 9, 5, 0]])
    a, da = duo.loglinear_alpha(torch.tensor([[0.6]]))
    perfect = torch.nn.functional.one_hot(x0, V).float() * 1e4
    assert duo.nelbo_per_token(perfect, xt, x0, a, da).abs().max().item() < 1e-4
    wrong = torch.randn(1, 4, V)
    assert (duo.nelbo_per_token(wrong, xt, x0, a, da) > 0).all()


def test_loss_has_gradients_in_bf16_autocast_dtype():
    V = 9
    logits = torch.randn(2, 3, V, requires_grad=True)
    x0 = torch.randint(0, V, (2, 3))
    t = duo.sample_t(2, torch.device('cpu'))
    a, da = duo.loglinear_alpha(t[:, None])
    xt = duo.q_xt(x0, a, V)
    loss = duo.nelbo_per_token(logits.bfloat16(), xt, x0, a, da).mean()
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_forward_process_rate():
    g = torch.Generator().manual_seed(2)
    V = 5
    x0 = torch.zeros(1, 100000, dtype=torch.long)
    xt = duo.q_xt(x0, torch.tensor([[0.3]]), V, generator=g)
    # P(x_t = x0) = alpha + (1 - alpha)/V = 0.44
    assert abs((xt == 0).float().mean().item() - 0.44) < 0.01


def test_reference_sampler_recovers_a_confident_denoiser_in_8_steps():
    V, L = 30, 10
    target = torch.arange(L) * 7 % V

    def denoise(x, sigma):
        assert sigma.shape == (x.shape[0],) and (sigma > 0).all()
        return torch.nn.functional.one_hot(target, V).float().expand(x.shape[0], L, V) * 10

    for greedy in (False, True):
        out = duo.sample(denoise, 3, L, V, steps=8, greedy_tail=greedy, top_p=0.9, generator=torch.Generator().manual_seed(0))
        assert (out == target).all()


def test_prior_kl_matches_direct_sum():
    V, a = 13, 0.01
    q = torch.full((V,), (1 - a) / V, dtype=torch.float64)
    q[0] += a
    direct = (q * (q * V).log()).sum().item()
    assert abs(duo.prior_kl(V, a) - direct) < 1e-12


def test_training_loss_falls_when_a_tiny_denoiser_learns():
    """A per-position table (no context) still learns the data's unigram: the loss must fall."""
    torch.manual_seed(0)
    V, L = 8, 4
    table = torch.nn.Parameter(torch.zeros(L, V))
    opt = torch.optim.Adam([table], lr=0.1)
    data = torch.tensor([[1, 2, 3, 4]]).repeat(32, 1)

    def denoise(xt, sigma):
        return table.expand(xt.shape[0], L, V)

    first = duo.training_loss(denoise, data, V).item()
    for _ in range(150):
        opt.zero_grad()
        duo.training_loss(denoise, data, V).backward()
        opt.step()
    last = sum(duo.training_loss(denoise, data, V).item() for _ in range(10)) / 10
    assert last < 0.5 * first, (first, last)


def test_gaussian_curriculum_alpha_is_the_argmax_keep_rate():
    """alpha(gamma) against a Monte-Carlo arg-max of the Gaussian latent, V = 6."""
    V = 6
    cur = duo.GaussianCurriculum(V, -3.5, -1.75)
    g = torch.Generator().manual_seed(0)
    for t in (0.0, 0.4, 1.0):
        gamma = torch.tensor(-3.5 + t * 1.75, dtype=torch.float64)
        a_g, s_g = torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()
        w = a_g * torch.nn.functional.one_hot(torch.zeros(200000, dtype=torch.long), V) + s_g * torch.randn(200000, V, generator=g, dtype=torch.float64)
        keep = (w.argmax(-1) == 0).double().mean().item()
        alpha, _ = cur(torch.tensor([t]))
        want = (V * keep - 1) / (V - 1)
        assert abs(alpha.item() - want) < 0.01, (t, alpha.item(), want)


def test_gaussian_curriculum_slope_and_direction():
    cur = duo.GaussianCurriculum(8192)
    t = torch.tensor([0.1, 0.5, 0.9])
    a, da = cur(t)
    assert (da < 0).all(), 'more noise as t grows'
    h = 1e-3
    fd = (cur(t + h)[0] - cur(t - h)[0]) / (2 * h)
    assert torch.allclose(da, fd, rtol=0.02)
    assert 0.9 < cur(torch.tensor([0.0]))[0].item() < 1 and 0 < cur(torch.tensor([1.0]))[0].item() < 0.2
