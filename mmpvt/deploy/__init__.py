"""Export (:mod:`.export`: ONNX through either of torch's exporters, torch.export) and
PyTorch-free inference of exported models (:mod:`.onnx_infer`: onnxruntime + numpy)."""
