"""The baseline a user would otherwise run: MDLM's ancestral (ddpm) sampling loop as the reference
repository runs it, batch 1, one network forward per step, in PyTorch on the CPU, on the weights
of a committed model directory (recovered from its ONNX initializers: no checkpoint needed).
Prints one JSON line: tokens/s over the runs. loadtest/int8.ts compares the engine against it.

  python3 -m dlm.torch_loop --model zoo/default [--tokens 64] [--steps 16] [--runs 3] [--threads 2]
"""
import argparse
import json
import math
import time

import onnx
import torch
from onnx import numpy_helper

from dlm.dit import DiT, DiTConfig


def state_from_onnx(path: str) -> dict:
    """The DiT state dict from an exported denoiser: named initializers (fp16 storage suffixed
    __fp16), MatMul weights by their node's module path (stored transposed), LayerNorm weights
    by node order within each block (norm1, norm2) and the final layer."""
    m = onnx.load(path)
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).astype("float32")) for i in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}

    def const(name):
        if name in inits:
            return inits[name]
        p = prod[name]
        return const(p.input[0])  # through the Cast from fp16

    state = {}
    for name, t in inits.items():
        if name.startswith("dit."):
            state[name[len("dit."):].removesuffix("__fp16")] = t
    for n in m.graph.node:
        path = n.name.removeprefix("/dit/").rsplit("/", 1)[0].replace("/", ".")
        if n.op_type == "MatMul" and (n.input[1] in inits or prod.get(n.input[1], n).op_type == "Cast"):
            # '/dit/blocks.0/mlp/mlp.0/MatMul' -> blocks.0.mlp.0 (module path repeats the Sequential)
            key = path.replace("mlp.mlp.", "mlp.")
            state[f"{key}.weight"] = const(n.input[1]).T.contiguous()
        elif n.op_type == "LayerNormalization":
            block, _, which = n.name.removeprefix("/dit/").partition("/")
            norm = "norm_final" if block == "output_layer" else ("norm2" if which.endswith("_1") else "norm1")
            state[f"{block}.{norm}.weight"] = const(n.input[1])
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    manifest = json.load(open(f"{args.model}/model.json"))
    a = manifest["architecture"]
    cfg = DiTConfig(vocab_size=manifest["vocab_size"], d_model=a["d_model"], n_layers=a["n_layers"], n_heads=a["n_heads"],
                    cond_dim=a["cond_dim"], mlp_ratio=a.get("mlp_ratio", 4))
    model = DiT(cfg).eval()
    model.load_state_dict(state_from_onnx(f"{args.model}/{manifest['graphs']['denoiser']['file']}"), strict=True)
    mask = manifest["special_tokens"]["mask"]
    eps = manifest.get("noise", {}).get("eps", 1e-3)
    g = torch.Generator().manual_seed(args.seed)
    L, S = args.tokens, args.steps

    def sample() -> None:
        # MDLM's ddpm update (log-linear schedule): x0 ~ p_theta, then each [MASK] stays masked
        # with probability move_chance_s / move_chance_t; one forward per step.
        x = torch.full((1, L), mask, dtype=torch.long)
        ts = torch.linspace(1, eps, S + 1)
        for i in range(S):
            t, s = ts[i], ts[i + 1]
            with torch.no_grad():
                logits = model(x)
            logits[..., mask] = -math.inf
            p_x0 = logits.float().softmax(-1)
            move_t, move_s = (1 - eps) * t, (1 - eps) * s  # 1 - exp(-sigma(t)) of the log-linear schedule
            q = p_x0 * (move_t - move_s)
            q[..., mask] = move_s
            gumbel = -torch.log(-torch.log(torch.rand(q.shape, generator=g) + 1e-10) + 1e-10)
            x_new = (q.log() + gumbel).argmax(-1)
            x = torch.where(x == mask, x_new, x)

    sample()  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.runs):
        sample()
    sec = time.perf_counter() - t0
    print(json.dumps({"tokens_per_second": args.runs * L / sec, "seconds": sec, "runs": args.runs, "tokens": L, "steps": S, "threads": args.threads}))


if __name__ == "__main__":
    main()
