"""Export of PVT / PVTv2 backbones and whole models (:mod:`.export`: ONNX through either of
torch's exporters, torch.export). A whole model is exported by the spec of its task
(:mod:`.specs`), chosen by the support table (:mod:`.support`), with the graph modules of
:mod:`.graphs` and :mod:`.two_stage` and the metadata of :mod:`.meta`. The exported files run
without PyTorch in the top-level package :mod:`mmpvt_runtime` (onnxruntime + numpy)."""
