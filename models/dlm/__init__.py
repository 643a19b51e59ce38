"""dlm-serve's Python side: reference networks, training, ONNX export (see models/README)."""
