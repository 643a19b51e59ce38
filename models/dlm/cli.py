"""The command lines the model tools share, so each tool adds only its own flags:
  exporters   a training run in, a model directory out (dlm.export, export_bd3lm, export_uniform,
              e2d2_export, asarm_export);
  converters  a published checkpoint in, a model directory out (dlm.convert_*);
  parity      a graph and PyTorch's outputs for the Node tests (dlm.parity*, asarm_parity, e2d2_parity).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Callable


def _parser(doc: str) -> argparse.ArgumentParser:
    # The module docstrings carry usage lines: keep their layout in --help.
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def export_parser(doc: str, name_required: bool = True, description: bool = False,
                  card: bool = False, chat: bool = False) -> argparse.ArgumentParser:
    ap = _parser(doc)
    ap.add_argument('--run', required=True, help='training run folder (ema.pt, results.json)')
    ap.add_argument('--tokenizer', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--name', required=name_required, default=None,
                    help=None if name_required else "default: the --out folder's name")
    ap.add_argument('--fp16-weights', action='store_true')
    if description:
        ap.add_argument('--description', default=None)
    if card:
        ap.add_argument('--card', action='store_true', help='write README.md (the model card) from results.json')
    if chat:
        ap.add_argument('--chat-template', default=None,
                        help='JSON file: the chat template the model was fine-tuned with (goes in model.json)')
    return ap


def parity_parser(doc: str, out_required: bool = True, run: bool = True) -> argparse.ArgumentParser:
    """--out (the cases folder), --fp16-weights (the weights as the shipped models store them,
    PyTorch rounded alike), and with `run` --run (a trained run instead of random weights)."""
    ap = _parser(doc)
    ap.add_argument('--out', required=out_required)
    ap.add_argument('--fp16-weights', action='store_true')
    if run:
        ap.add_argument('--run', default=None, help='a training run folder (ema.pt, results.json) instead of random weights')
    return ap


def parse_parity(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses and creates the cases folder (every parity writer writes into it)."""
    a = ap.parse_args(argv)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    return a


def converter_main(convert: Callable, default_name: str, doc: str, argv=None,
                   add_args: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """--checkpoint, --out, --name, --fp16-weights; add_args(parser) adds a converter's own
    flags, passed to convert as keyword arguments."""
    ap = _parser(doc)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--name', default=default_name)
    ap.add_argument('--fp16-weights', action='store_true')
    if add_args:
        add_args(ap)
    a = vars(ap.parse_args(argv))
    common = [a.pop(k) for k in ('checkpoint', 'out', 'name', 'fp16_weights')]
    convert(*common, **a)
    print(json.dumps({'out': common[1]}))
