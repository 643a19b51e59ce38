"""Writes a quantized variant of an exported graph: every MatMul whose right operand is a constant
2-D weight (q/k/v/out projections, MLP, output head) becomes an ONNX Runtime contrib op that
onnxruntime-node runs on the CPU, with the activations quantized per call.

  int8: com.microsoft.DynamicQuantizeMatMul, symmetric int8 weights with one scale per output
        channel (max |w| / 127, round half to even), activations quantized per tensor by ORT
        (uint8, asymmetric) at each call. On AVX512-VNNI / AMX-INT8 this runs u8 x s8 kernels.
  int4: com.microsoft.MatMulNBits (bits 4, per-block scales along K, zero point 8),
        accuracy_level 4 (int8 compute on the activations), for measurement.

Everything else (attention score MatMuls, LayerNorm, adaLN, GELU, softmax) stays as exported.

--weights embed writes the quantized weights into OUT (self-contained file, int8: ~1 byte a
weight). --weights derive (int8 only) writes no weights at all: OUT points at the fp16/fp32
weights inside IN through ONNX external data (location IN's file name, offset and length of each
tensor's bytes in IN) and computes scale and int8 weight with ordinary ONNX ops (Abs, ReduceMax,
Div, Round, Clip, Cast) on those constants, which ONNX Runtime folds once at session creation.
So a derived variant is a few hundred KB beside its source, needs nothing at install time, and
gives exactly the weights embed would (same fp32 arithmetic, same rounding): the default model's
directory can carry it under its size limit, where an embedded copy (~16 MB) would not fit.
A derived file is valid only beside the very IN it was written from: the manifest records IN's
sha256 and the engine checks it before opening the variant. ONNX Runtime keeps what it folded
from in memory, so the engine folds a derived variant once into a cache file
(engine/derived-graph.ts) and opens that.

usage: python3 -m dlm.quantize IN.onnx OUT.onnx [--bits 8|4] [--weights embed|derive]
           [--block-size 32] [--min-elements 4096] [--keep NAME]... [--role ROLE [--default-on DEVICE]]

--role ROLE records OUT in IN's directory's model.json as graphs.ROLE.variants.int8 (file, how it
was made, and for derive the sha256 of IN); --default-on cpu also makes int8 that model's default
precision on the CPU (only where its card shows Gen PPL within 5% of fp32).
Runs with python3-onnx 1.12 (Debian, torch 1.13 era) and newer onnx alike.
"""
import argparse
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"
EPS = np.float32(1e-12)  # a column of zeros gets scale EPS / 127 instead of a division by zero


def int8_weights(w: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """[K, N] float -> (int8 [K, N], fp32 scale [N]); the reference the derive graph reproduces."""
    w = w.astype(np.float32)
    scale = (np.maximum(np.abs(w).max(axis=0), EPS) / np.float32(127)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def nbits_weights(w: np.ndarray, block: int, bits: int = 4) -> "tuple[np.ndarray, np.ndarray]":
    """[K, N] float -> (uint8 [N, K/block, block*bits/8], fp32 scales [N * K/block]).

    MatMulNBits' layout: per output column n, K split into blocks, symmetric scale per block
    (max |w| / (2^(bits-1) - 1)), value = (q - zero) * scale with the default zero point
    2^(bits-1); 4-bit values two a byte (low nibble first), 8-bit values one a byte."""
    k, n = w.shape
    kp = -(-k // block) * block
    wt = np.zeros((n, kp), np.float32)
    wt[:, :k] = w.astype(np.float32).T
    blocks = wt.reshape(n, kp // block, block)
    qmax = 2 ** (bits - 1) - 1
    scale = (np.maximum(np.abs(blocks).max(axis=2), EPS) / np.float32(qmax)).astype(np.float32)
    q = (np.clip(np.rint(blocks / scale[:, :, None]), -qmax - 1, qmax) + qmax + 1).astype(np.uint8)
    if bits == 8:
        return q, scale.reshape(-1)
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1)


def int4_weights(w: np.ndarray, block: int) -> "tuple[np.ndarray, np.ndarray]":
    return nbits_weights(w, block, 4)


class Weights:
    """Constant weights of a graph: initializers, possibly behind a Cast (fp16 storage)."""

    def __init__(self, graph: onnx.GraphProto):
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}

    def source(self, name: str) -> "onnx.TensorProto | None":
        """The initializer a MatMul operand is (or is a Cast of), if it is a 2-D constant."""
        if name in self.inits:
            t = self.inits[name]
        else:
            p = self.producer.get(name)
            if p is None or p.op_type != "Cast" or p.input[0] not in self.inits:
                return None
            t = self.inits[p.input[0]]
        return t if len(t.dims) == 2 else None


def external_ref(t: onnx.TensorProto, src_bytes: bytes, location: str, name: str) -> onnx.TensorProto:
    """A copy of initializer t whose bytes stay in the source file, found by their position."""
    raw = t.raw_data if t.HasField("raw_data") else numpy_helper.from_array(numpy_helper.to_array(t)).raw_data
    off = src_bytes.find(raw) if t.HasField("raw_data") else -1
    if off < 0:
        raise SystemExit(f"{t.name}: its bytes are not stored raw in the source graph; use --weights embed")
    ref = onnx.TensorProto()
    ref.name = name
    ref.data_type = t.data_type
    ref.dims.extend(t.dims)
    ref.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(off)), ("length", str(len(raw)))):
        e = ref.external_data.add()
        e.key, e.value = k, v
    return ref


def record(args: argparse.Namespace, sha: str) -> None:
    path = os.path.join(os.path.dirname(os.path.abspath(args.src)), "model.json")
    with open(path) as fh:
        manifest = json.load(fh)
    graph = manifest["graphs"].get(args.role)
    if graph is None or graph["file"] != os.path.basename(args.src):
        raise SystemExit(f"{path}: graphs.{args.role}.file is not {os.path.basename(args.src)}")
    flags = f"--weights {args.weights}" + "".join(f" --keep {k}" for k in args.keep)
    variant = {"file": os.path.basename(args.dst), "method": f"models/dlm/quantize.py {flags}"}
    if args.weights == "derive":
        variant["source_sha256"] = sha
    graph["variants"] = {"int8": variant}
    defaults = manifest.get("default_precision", {})
    for device in args.default_on:
        defaults[device] = "int8"
    if defaults:
        manifest["default_precision"] = defaults
    with open(path, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--bits", type=int, choices=(8, 4), default=8)
    ap.add_argument("--weights", choices=("embed", "derive"), default="embed")
    ap.add_argument("--format", choices=("dqmm", "nbits"), default=None,
                    help="dqmm: DynamicQuantizeMatMul (int8 only); nbits: MatMulNBits (default for --bits 4)")
    ap.add_argument("--block-size", type=int, default=32, help="nbits: weights per scale along K")
    ap.add_argument("--min-elements", type=int, default=4096, help="leave smaller weights in float")
    ap.add_argument("--keep", action="append", default=[], help="leave MatMuls whose node name contains this in float (repeatable)")
    ap.add_argument("--role", help="record OUT as this graph's int8 variant in model.json beside IN")
    ap.add_argument("--default-on", action="append", default=[], choices=("cpu",), help="with --role: int8 is the default on this device")
    args = ap.parse_args()
    args.format = args.format or ("nbits" if args.bits == 4 else "dqmm")
    if args.format == "dqmm" and args.bits != 8:
        raise SystemExit("--format dqmm is int8 only")
    if args.role and args.bits != 8:
        raise SystemExit("--role records int8 variants only (int4 is measured, not served)")
    if args.weights == "derive" and args.format != "dqmm":
        raise SystemExit("--weights derive writes int8 only (int4 packing is not worth folding in-graph)")
    if args.weights == "derive" and os.path.dirname(os.path.abspath(args.src)) != os.path.dirname(os.path.abspath(args.dst)):
        raise SystemExit("--weights derive: OUT must sit in the same directory as IN (it reads IN's bytes)")

    src_bytes = open(args.src, "rb").read()
    model = onnx.load_from_string(src_bytes)
    graph = model.graph
    weights = Weights(graph)
    location = os.path.basename(args.src)
    nodes, inits, done = [], [], 0
    for node in graph.node:
        w = weights.source(node.input[1]) if node.op_type == "MatMul" else None
        if w is None or int(np.prod(w.dims)) < args.min_elements or any(s in node.name for s in args.keep):
            nodes.append(node)
            continue
        k, n = w.dims
        base = f"{node.name or node.output[0]}_q"
        if args.format == "nbits":
            packed, scale = nbits_weights(numpy_helper.to_array(w), args.block_size, args.bits)
            inits += [numpy_helper.from_array(packed, f"{base}_B"), numpy_helper.from_array(scale, f"{base}_scales")]
            nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{base}_B", f"{base}_scales"], list(node.output),
                                          domain=MS, name=base, K=k, N=n, bits=args.bits, block_size=args.block_size, accuracy_level=4))
        elif args.weights == "embed":
            q, scale = int8_weights(numpy_helper.to_array(w))
            inits += [numpy_helper.from_array(q, f"{base}_B"), numpy_helper.from_array(scale, f"{base}_scale")]
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], f"{base}_B", f"{base}_scale"], list(node.output), domain=MS, name=base))
        else:
            inits.append(external_ref(w, src_bytes, location, f"{base}_src"))
            # The same arithmetic as int8_weights, on constants: ORT folds it at session creation.
            for c, v in ((f"{base}_eps", EPS), (f"{base}_127", np.float32(127)), (f"{base}_m127", np.float32(-127))):
                inits.append(numpy_helper.from_array(np.array(v, np.float32), c))
            f = lambda s: f"{base}_{s}"  # noqa: E731
            nodes += [
                helper.make_node("Cast", [f("src")], [f("w")], to=TensorProto.FLOAT),
                helper.make_node("Abs", [f("w")], [f("abs")]),
                helper.make_node("ReduceMax", [f("abs")], [f("max")], axes=[0], keepdims=0),
                helper.make_node("Max", [f("max"), f("eps")], [f("maxe")]),
                helper.make_node("Div", [f("maxe"), f("127")], [f("scale")]),
                helper.make_node("Div", [f("w"), f("scale")], [f("ws")]),
                helper.make_node("Round", [f("ws")], [f("wr")]),
                helper.make_node("Clip", [f("wr"), f("m127"), f("127")], [f("wc")]),
                helper.make_node("Cast", [f("wc")], [f("B")], to=TensorProto.INT8),
                helper.make_node("DynamicQuantizeMatMul", [node.input[0], f("B"), f("scale")], list(node.output), domain=MS, name=base),
            ]
        done += 1
    if done == 0:
        raise SystemExit(f"{args.src}: no MatMul with a constant 2-D weight of {args.min_elements}+ elements")
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    if not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS, 1))
    # Drop what nothing reads any more (the float weights, their Casts), keeping graph inputs' order.
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    changed = True
    while changed:
        changed = False
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) != len(graph.node):
            del graph.node[:]
            graph.node.extend(keep)
            used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
            changed = True
    kept = [i for i in graph.initializer if i.name in used]
    if args.weights == "derive":
        # The float tensors left as they were (embeddings, adaLN, norms) also stay in IN.
        kept = [external_ref(i, src_bytes, location, i.name) if i.HasField("raw_data") and len(i.raw_data) >= 4096 else i for i in kept]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    with open(args.dst, "wb") as fh:
        fh.write(model.SerializeToString())
    onnx.checker.check_model(args.dst)  # by path, so that it resolves the external data beside it
    sha = hashlib.sha256(src_bytes).hexdigest()
    if args.role:
        record(args, sha)
    print(f"{args.dst}: {done} MatMuls -> {f'int{args.bits} MatMulNBits' if args.format == 'nbits' else 'int8 DynamicQuantizeMatMul'}"
          f" ({args.weights}), {os.path.getsize(args.dst) / 1e6:.2f} MB; source sha256 {sha}")


if __name__ == "__main__":
    main()
