"""The two-stream AS-ARM: what each position's prediction may see, the any-subset orders, and a
short training run that learns."""
import torch

from dlm.asarm import Asarm, AsarmConfig, any_subset_ranks, asarm_loss


def small(seed=0, vocab=11):
    torch.manual_seed(seed)
    m = Asarm(AsarmConfig(vocab_size=vocab, d_model=32, n_layers=2, n_heads=2, max_length=12))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'ln' not in name:
                p.normal_(0, 0.3)
    return m.eval()


def test_prediction_ignores_own_token_and_later_ranks():
    m = small()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 11, (1, 8), generator=g)
    ranks = torch.tensor([[0, 0, 3, 1, 4, 2, 5, 6]])
    base = m(x, ranks)
    i = 4  # rank 4: sees ranks 0..3 (positions 0, 1, 2, 3, 5)
    y = x.clone()
    y[0, i] = (x[0, i] + 1) % 11       # its own token
    y[0, 6] = (x[0, 6] + 1) % 11       # a later rank
    y[0, 7] = (x[0, 7] + 1) % 11
    assert torch.allclose(m(y, ranks)[0, i], base[0, i], atol=1e-5)
    z = x.clone()
    z[0, 5] = (x[0, 5] + 1) % 11       # an earlier rank: must matter
    assert not torch.allclose(m(z, ranks)[0, i], base[0, i], atol=1e-4)


def test_shared_rank_positions_predict_from_the_context_alone():
    m = small()
    x = torch.randint(0, 11, (1, 7), generator=torch.Generator().manual_seed(2))
    draft = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])   # positions 3..6 drafted together
    serial = torch.tensor([[0, 0, 0, 1, 2, 3, 4]])  # position 3 first in the order
    out = m(x, draft)
    y = x.clone()
    y[0, 3:] = (x[0, 3:] + 5) % 11
    assert torch.allclose(m(y, draft)[0, 3:], out[0, 3:], atol=1e-5)
    # The first of the serial order sees the same context, so it gives the same conditional.
    assert torch.allclose(m(x, serial)[0, 3], out[0, 3], atol=1e-5)


def test_padding_does_not_leak():
    m = small()
    x = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(3))
    ranks = torch.stack([torch.randperm(9), torch.randperm(9)])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 5:] = 0
    alone = m(x[1:, :5], ranks[1:, :5])
    assert torch.allclose(m(x, ranks, mask)[1, :5], alone[0], atol=1e-5)


def test_any_subset_ranks():
    g = torch.Generator().manual_seed(4)
    x = torch.zeros(64, 10, dtype=torch.long)
    ranks, target = any_subset_ranks(x, g)
    for r, t in zip(ranks, target):
        assert t.any()
        assert (r[~t] == 0).all()
        assert sorted(r[t].tolist()) == list(range(1, int(t.sum()) + 1))
    # The context share varies from row to row (u ~ U(0, 1)).
    sizes = target.sum(dim=1)
    assert sizes.min() <= 3 and sizes.max() >= 8


def test_training_learns_a_repeated_pattern():
    torch.manual_seed(0)
    m = Asarm(AsarmConfig(vocab_size=8, d_model=32, n_layers=2, n_heads=2, max_length=8))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(5)
    x = torch.tensor([[1, 2, 3, 4, 1, 2, 3, 4]]).repeat(16, 1)
    first = None
    for _ in range(80):
        loss, _ = asarm_loss(m, x, g)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 * first
