"""Adds per-position reductions of the logits to an exported graph, so that a sampler which needs
only them never copies the full [B, L, V] logits off the GPU.

Confidence-based samplers (LLaDA / Fast-dLLM confidence, greedy decoding) need, per position,
the most likely token and its probability: 12 bytes instead of 4 x V (32 KiB at V = 8192).
This appends, computed on the device from `logits`:
  logits_argmax      int64 [B, L]   the most likely token id
  logits_max_logprob float [B, L]   its log-probability (log-softmax over the vocabulary)
The original outputs stay, and a caller asks ONNX Runtime for only the outputs it needs
(`session.run(feeds, ['logits_argmax', 'logits_max_logprob'])`), so one graph serves both kinds
of sampler. --exclude-id drops token ids from the argmax and the softmax (MDLM's SUBS: the
[MASK] id is never predicted), exactly as setting their logits to -inf would.

usage: add-logit-reductions.py IN.onnx OUT.onnx [--logits NAME] [--exclude-id ID]...
Runs with python3-onnx 1.12 (torch 1.13 era) and onnx 1.2x alike.
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--logits", default="logits", help="name of the logits output [..., V]")
    ap.add_argument("--exclude-id", type=int, action="append", default=[], help="token id never predicted (repeatable)")
    args = ap.parse_args()

    model = onnx.load(args.src)
    graph = model.graph
    out = next((o for o in graph.output if o.name == args.logits), None)
    if out is None:
        raise SystemExit(f"{args.src}: no output named {args.logits!r} (outputs: {[o.name for o in graph.output]})")
    if any(o.name.startswith(args.logits + "_") for o in graph.output):
        raise SystemExit(f"{args.src}: already has {args.logits}_* outputs")
    elem = out.type.tensor_type.elem_type
    dims = out.type.tensor_type.shape.dim
    vocab = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else 0
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))

    src = args.logits
    nodes = []
    if args.exclude_id:
        if vocab <= 0:
            raise SystemExit("--exclude-id needs a static vocabulary size on the logits' last axis")
        # onnx >= 1.13 has helper.tensor_dtype_to_np_dtype; 1.12 (Debian's) only onnx.mapping.
        to_np = getattr(helper, "tensor_dtype_to_np_dtype", None)
        dtype = to_np(elem) if to_np else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem]
        bias = np.zeros(vocab, dtype=dtype)
        # The most negative finite value, not -inf: -inf - -inf in log-softmax would give NaN
        # only if every logit were excluded, but finite keeps fp16 graphs well clear of it too.
        bias[args.exclude_id] = np.finfo(dtype).min
        graph.initializer.append(numpy_helper.from_array(bias, name=f"{src}_exclusion_bias"))
        nodes.append(helper.make_node("Add", [src, f"{src}_exclusion_bias"], [f"{src}_excluded"]))
        src = f"{src}_excluded"

    nodes.append(helper.make_node("LogSoftmax", [src], [f"{args.logits}_logprobs"], axis=-1))
    nodes.append(helper.make_node("ArgMax", [src], [f"{args.logits}_argmax"], axis=-1, keepdims=0))
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), name=f"{args.logits}_last_axis"))
        nodes.append(helper.make_node("ReduceMax", [f"{args.logits}_logprobs", f"{args.logits}_last_axis"], [f"{args.logits}_max_logprob"], keepdims=0))
    else:
        nodes.append(helper.make_node("ReduceMax", [f"{args.logits}_logprobs"], [f"{args.logits}_max_logprob"], axes=[-1], keepdims=0))
    graph.node.extend(nodes)

    lead = [d.dim_param or d.dim_value for d in dims[:-1]]
    graph.output.append(helper.make_tensor_value_info(f"{args.logits}_argmax", TensorProto.INT64, lead))
    graph.output.append(helper.make_tensor_value_info(f"{args.logits}_max_logprob", elem, lead))
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)
    print(f"{args.dst}: added {args.logits}_argmax and {args.logits}_max_logprob" + (f", excluding ids {args.exclude_id}" if args.exclude_id else ""))


if __name__ == "__main__":
    main()
