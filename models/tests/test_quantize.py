"""models/dlm/quantize.py on a small graph of its own: what it rewrites, the int8 and int4 weights
it writes (within half a step of the float weights, in MatMulNBits' nibble layout), and a derived
variant that carries no weights but points at exactly the source's bytes."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dlm import quantize


def _graph(path, rng):
    """x [B, 64] -> MatMul(fp16 weight, via Cast) -> MatMul(fp32 weight) -> logits; one tiny MatMul."""
    w1 = rng.standard_normal((64, 96)).astype(np.float16)
    w2 = rng.standard_normal((96, 80)).astype(np.float32)
    tiny = rng.standard_normal((80, 8)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["w1_fp16"], ["w1"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="/blocks.0/mlp/MatMul"),
        helper.make_node("MatMul", ["h", "w2"], ["h2"], name="/output_layer/linear/MatMul"),
        helper.make_node("MatMul", ["h2", "tiny"], ["logits"], name="/tiny/MatMul"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 64])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 8])],
                          [numpy_helper.from_array(w1, "w1_fp16"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(tiny, "tiny")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w1, w2


def _run(*args):
    return subprocess.run([sys.executable, "-m", "dlm.quantize", *map(str, args)], check=True, capture_output=True, text=True)


def test_int8_weights_are_within_half_a_step_per_column():
    w = np.random.default_rng(0).standard_normal((128, 16)).astype(np.float32) * np.arange(1, 17)
    q, scale = quantize.int8_weights(w)
    assert q.dtype == np.int8 and scale.shape == (16,)
    assert np.abs(q).max() == 127  # every column uses its full range
    assert np.all(np.abs(q * scale - w) <= scale / 2 + 1e-6)


def test_int4_packing_is_matmulnbits_layout():
    w = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    packed, scale = quantize.int4_weights(w, 32)
    assert packed.shape == (3, 2, 16) and scale.shape == (6,)
    lo, hi = packed & 15, packed >> 4
    q = np.stack([lo, hi], axis=-1).reshape(3, 2, 32).astype(np.float32) - 8  # low nibble first
    deq = (q * scale.reshape(3, 2, 1)).reshape(3, 64).T
    assert np.all(np.abs(deq - w) <= np.repeat(scale.reshape(3, 2), 32, axis=1).T / 2 + 1e-6)


def test_embed_rewrites_big_matmuls_and_keeps_what_it_is_told(tmp_path):
    rng = np.random.default_rng(2)
    w1, _ = _graph(tmp_path / "g.onnx", rng)
    _run(tmp_path / "g.onnx", tmp_path / "g.int8.onnx", "--keep", "output_layer")
    m = onnx.load(tmp_path / "g.int8.onnx")
    ops = [(n.op_type, n.domain) for n in m.graph.node]
    assert ops.count(("DynamicQuantizeMatMul", "com.microsoft")) == 1
    assert ops.count(("MatMul", "")) == 2  # the kept head and the tiny one
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    assert "w1_fp16" not in inits  # the float weight it replaced is gone
    q, scale = quantize.int8_weights(w1.astype(np.float32))
    assert np.array_equal(inits["/blocks.0/mlp/MatMul_q_B"], q) and np.array_equal(inits["/blocks.0/mlp/MatMul_q_scale"], scale)


def test_derive_points_at_the_source_bytes_and_records_the_variant(tmp_path):
    rng = np.random.default_rng(3)
    _graph(tmp_path / "g.onnx", rng)
    (tmp_path / "model.json").write_text(json.dumps({"graphs": {"denoiser": {"file": "g.onnx", "inputs": ["x"], "outputs": ["logits"]}}}))
    _run(tmp_path / "g.onnx", tmp_path / "g.int8.onnx", "--weights", "derive", "--role", "denoiser", "--default-on", "cpu")
    src = (tmp_path / "g.onnx").read_bytes()
    m = onnx.load(tmp_path / "g.int8.onnx", load_external_data=False)
    ext = [i for i in m.graph.initializer if i.data_location == TensorProto.EXTERNAL]
    assert ext, "derive wrote no external references"
    raw = {i.raw_data for i in onnx.load(tmp_path / "g.onnx").graph.initializer}
    for i in ext:
        kv = {e.key: e.value for e in i.external_data}
        assert kv["location"] == "g.onnx"
        off, n = int(kv["offset"]), int(kv["length"])
        assert src[off:off + n] in raw  # a whole source tensor, byte for byte
    assert any(n.op_type == "Round" for n in m.graph.node) and any(n.op_type == "DynamicQuantizeMatMul" for n in m.graph.node)
    manifest = json.loads((tmp_path / "model.json").read_text())
    v = manifest["graphs"]["denoiser"]["variants"]["int8"]
    assert v["file"] == "g.int8.onnx" and v["source_sha256"] == hashlib.sha256(src).hexdigest()
    assert manifest["default_precision"] == {"cpu": "int8"}


def test_nbits8_layout_is_one_byte_a_weight_around_zero_point_128():
    w = np.random.default_rng(4).standard_normal((64, 3)).astype(np.float32)
    q, scale = quantize.nbits_weights(w, 32, 8)
    assert q.shape == (3, 2, 32) and q.dtype == np.uint8 and scale.shape == (6,)
    deq = ((q.astype(np.float32) - 128) * scale.reshape(3, 2, 1)).reshape(3, 64).T
    assert np.all(np.abs(deq - w) <= np.repeat(scale.reshape(3, 2), 32, axis=1).T / 2 + 1e-6)
    assert np.abs(q.astype(np.int32) - 128).max() == 127  # each block uses its full range
