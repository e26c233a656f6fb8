"""The benchmarks, one module per tool under ``tools/analysis/``: mmpvt's backbones against
mmdet's (:mod:`.backbone`), a classifier's training step against transformers' and the authors'
(:mod:`.classification`), eager vs ``torch.compile`` vs onnxruntime (:mod:`.deploy`) and a
config's whole-model latency per image, the paper's Table 11 (:mod:`.latency`)."""
