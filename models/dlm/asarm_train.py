"""The AS-ARM as dlm.train plugs it in (the `asarm` entry of its FAMILIES): presets, the
any-subset loss, the validation metrics.

  python -m dlm.asarm_train --preset tiny --out DIR [--device cuda] [--time-budget MIN]
is `python -m dlm.train --family asarm ...`: the shared loop writes ema.pt (fp16 EMA weights),
results.json, and ckpt.pt (for --resume; never shipped)."""
import sys

import torch

from .asarm import Asarm, AsarmConfig, asarm_loss

PRESETS = {
    'test': dict(d_model=32, n_layers=1, n_heads=2, seq_len=32, batch=8),
    # The CPU-trained shipped model of this session (~6 minutes on 2 shared cores).
    'tiny': dict(d_model=128, n_layers=2, n_heads=4, seq_len=128, batch=16),
    # For ~8 minutes on an H100 beside the other families: ~8M parameters (16 MB in fp16).
    # The two streams double the attention rows, so it runs at about half a DiT's tokens/s.
    'shipped': dict(d_model=256, n_layers=6, n_heads=4, seq_len=128, batch=256, dropout=0.1),
}


def lr(cfg: AsarmConfig) -> float:
    return 5e-4 if cfg.d_model >= 256 else 1e-3


def loss(a, model: Asarm, x0: torch.Tensor, gen: torch.Generator, mask_id):
    return asarm_loss(model, x0, gen)


@torch.no_grad()
def val(a, model: Asarm, x0: torch.Tensor, gen: torch.Generator, mask_id) -> dict[str, float]:
    """Any-subset NLL (the loop's fixed seed fixes the orders: comparable across runs) and the
    left-to-right NLL."""
    _, l_as = asarm_loss(model, x0, gen)
    ranks = torch.arange(x0.shape[1], device=x0.device)[None].expand_as(x0)
    logits = model(x0, ranks).float()
    l_lr = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x0.reshape(-1))
    return {'val_any_subset_nll': float(l_as), 'val_l2r_nll': float(l_lr)}


def main(argv=None):
    # Imported here: dlm.train imports this module for its table.
    from .train import main as train_main
    train_main(['--family', 'asarm', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
    main()
