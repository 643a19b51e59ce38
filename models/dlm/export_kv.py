"""Adds the `denoiser_kv` graph to a whole-sequence MDLM or Duo model directory, from its own
denoiser.onnx, so rerunning it after new weights land in denoiser.onnx is one command:

  python -m dlm.export_kv --model models/zoo/default

`denoiser_kv` is the BD3-LM block graph's contract run on the bidirectional DiT: the query
positions (the window being denoised, or one sub-block of it) attend to the cached keys/values of
every other position (`past_*`, rotary applied, `past_mask` 0 for padded slots) and to their own,
and return their logits and their own keys/values (`present_*`). Attention does not care about
the order of its keys, so with an empty past and every position as a query it is the plain
denoiser; with a past computed from other tokens it is Fast-dLLM's approximate cache.

A Duo model's denoiser reads `sigma` (its adaLN conditions every position on the noise level), so
its kv graph reads it too, and the keys/values it returns hold for that sigma only: a cache kept
across Duo steps is stale in sigma as well as in tokens (docs/approx-cache.md says what the engine
keeps). Models with a loopholing latent (LDDM, LDDM-U) are not built here.

The weights are not stored twice: every initializer of denoiser_kv.onnx that also sits, byte for
byte, inside denoiser.onnx (a protobuf stores a tensor's raw bytes contiguously) is ONNX external
data pointing at that file and offset. model.json records denoiser.onnx's sha256 under
`weights_from`, so a kv graph left behind by new weights is refused instead of computing garbage.
"""
import argparse
import hashlib
import json
import os
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import set_external_data

from .bd3lm import BlockDenoiser
from .dit import DiT, DiTConfig
from .export import MdlmDenoiser, export_graph, fp16_initializers
from .export_bd3lm import INPUTS, OUTPUTS, TIMED_INPUTS, export_block_graph
from .export_uniform import export_graph as export_uniform_graph

ROLE = 'denoiser_kv'
FILE = 'denoiser_kv.onnx'
# Initializers smaller than this stay inside the kv graph: not worth an external reference.
SHARE_MIN_BYTES = 1024


def config_from_manifest(man: dict) -> DiTConfig:
    a = man['architecture']
    if a.get('backbone') != 'dit':
        raise SystemExit(f"backbone {a.get('backbone')!r}: the kv graph is built for the DiT")
    return DiTConfig(vocab_size=man['vocab_size'], d_model=a['d_model'], n_layers=a['n_layers'],
                     n_heads=a['n_heads'], cond_dim=a['cond_dim'], max_length=man['max_length'],
                     mlp_ratio=a['mlp_ratio'])


def _weight_uses(m: onnx.ModelProto) -> dict:
    """(consuming node name, input slot) -> the initializer it reads, looking through the Casts
    that fp16 storage adds and the Identity nodes the tracer leaves for merged duplicates."""
    source = {i.name: i for i in m.graph.initializer}
    plumbing = set()
    for n in m.graph.node:  # topological order: an alias is met after what it aliases
        fp16_cast = n.op_type == 'Cast' and n.input[0].endswith('__fp16')
        if (fp16_cast or n.op_type == 'Identity') and n.input[0] in source:
            source[n.output[0]] = source[n.input[0]]
            plumbing.add(n.name)
    uses = {}
    for n in m.graph.node:
        if n.name in plumbing:
            continue
        for slot, x in enumerate(n.input):
            if x in source:
                uses[(n.name, slot)] = source[x]
    return uses


def kind_of(man: dict) -> str:
    """'mdlm' (plain DiT, no time input) or 'duo' (DiT reading sigma); anything else is refused."""
    if man.get('loopholing'):
        raise SystemExit(f"{man['name']}: carries a loopholing latent; the kv graph is built for MDLM's plain DiT "
                         "denoiser and Duo's sigma-conditioned one only")
    if man['family'] == 'mdlm' and not man.get('time_conditioning'):
        return 'mdlm'
    if man['family'] == 'duo' and 'sigma' in man['graphs']['denoiser']['inputs']:
        return 'duo'
    raise SystemExit(f"{man['name']}: the kv graph is built for MDLM's plain DiT denoiser and Duo's "
                     "sigma-conditioned one only")


def export_probe(kind: str, dit: DiT, path: str) -> None:
    """Exports `dit` as a model of this kind's denoiser.onnx is exported (same tracer, same names)."""
    if kind == 'duo':
        export_uniform_graph('duo', dit, dit.cfg, path)
    else:
        export_graph(MdlmDenoiser(dit).eval(), path)


def _uses_to_params(cfg: DiTConfig, kind: str = 'mdlm') -> dict:
    """Which parameter (and whether transposed) each weight use of an exported denoiser reads.

    The tracer renames some weights (onnx::MatMul_N holds a Linear's weight transposed) and
    merges identical ones (norm scales still all 1), so the map goes through the consuming nodes,
    whose names the tracer derives from the module tree: it comes from exporting a probe DiT of
    the same shape whose parameters are all distinct."""
    torch.manual_seed(0)
    probe = DiT(cfg).eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.normal_()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'probe.onnx')
        export_probe(kind, probe, path)
        uses = _weight_uses(onnx.load(path))
    params = {n: p.detach().numpy() for n, p in probe.named_parameters()}
    out = {}
    for key, init in uses.items():
        arr = numpy_helper.to_array(init)
        for pname, p in params.items():
            if arr.shape == p.shape and np.array_equal(arr, p):
                out[key] = (pname, False)
                break
            if arr.ndim == 2 and arr.shape == p.T.shape and np.array_equal(arr, p.T):
                out[key] = (pname, True)
                break
    missing = set(params) - {p for p, _ in out.values()}
    if missing:
        raise SystemExit(f'parameters not found in the exported graph: {sorted(missing)}')
    return out


def dit_from_denoiser(graph_path: str, cfg: DiTConfig, kind: str = 'mdlm') -> DiT:
    """The DiT whose export is `graph_path` (fp16-stored weights come back as the fp32 values the
    graph computes with), so a new graph can be built from a model directory alone."""
    where = _uses_to_params(cfg, kind)
    sd = {}
    for key, init in _weight_uses(onnx.load(graph_path)).items():
        if key not in where:
            continue
        pname, transposed = where[key]
        arr = numpy_helper.to_array(init).astype(np.float32)
        sd[pname] = torch.from_numpy(np.ascontiguousarray(arr.T if transposed else arr))
    dit = DiT(cfg)
    missing = set(dict(dit.named_parameters())) - set(sd)
    if missing:
        raise SystemExit(f'{graph_path}: no initializer for {sorted(missing)} (not a DiT denoiser of this shape?)')
    dit.load_state_dict(sd, strict=False)  # buffers (rotary inv_freq) are rebuilt identically
    return dit.eval()


def share_weights(graph_path: str, source_path: str) -> dict:
    """Points every initializer of graph_path found byte for byte in source_path at it (external
    data, same directory); returns the bytes shared and the bytes left inline."""
    blob = open(source_path, 'rb').read()
    m = onnx.load(graph_path)
    shared = inline = 0
    for init in m.graph.initializer:
        raw = init.raw_data
        if len(raw) < SHARE_MIN_BYTES:
            inline += len(raw)
            continue
        off = blob.find(raw)
        if off < 0:
            inline += len(raw)
            continue
        set_external_data(init, os.path.basename(source_path), offset=off, length=len(raw))
        init.ClearField('raw_data')
        init.data_location = TensorProto.EXTERNAL
        shared += len(raw)
    onnx.save(m, graph_path)
    return {'shared_bytes': shared, 'inline_bytes': inline}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def export_kv(model_dir: str) -> dict:
    """Writes denoiser_kv.onnx next to denoiser.onnx and lists it in model.json."""
    man_path = os.path.join(model_dir, 'model.json')
    man = json.load(open(man_path))
    kind = kind_of(man)
    src_file = man['graphs']['denoiser']['file']
    src = os.path.join(model_dir, src_file)
    cfg = config_from_manifest(man)
    dit = dit_from_denoiser(src, cfg, kind)
    fp16 = any(i.name.endswith('__fp16') for i in onnx.load(src).graph.initializer)
    out = os.path.join(model_dir, FILE)
    export_block_graph(dit, out, timed=kind == 'duo')
    if fp16:  # the weights are already fp16 values, so these are the bytes denoiser.onnx holds
        fp16_initializers(out)
    sizes = share_weights(out, src)
    man['graphs'][ROLE] = {'file': FILE, 'inputs': TIMED_INPUTS if kind == 'duo' else INPUTS, 'outputs': OUTPUTS,
                           'weights_from': {'file': src_file, 'sha256': sha256(src)}}
    with open(man_path, 'w') as f:
        json.dump(man, f, indent=2)
        f.write('\n')
    return {'graph': out, 'bytes': os.path.getsize(out), 'fp16': fp16, **sizes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, help='MDLM or Duo model directory (model.json, denoiser.onnx)')
    a = ap.parse_args(argv)
    print(json.dumps(export_kv(a.model)))


if __name__ == '__main__':
    main()
