"""What users call: train/test runners (:mod:`.runner`), inference with mmdet's and mmseg's
inferencers (:mod:`.inference`), checkpoint conversion (:mod:`.convert`), the released models
by name (:mod:`.model_index`: ``get_model``, ``list_models``) and what the
command-line tools share for their arguments and errors (:mod:`.cli`). The demo, the benchmarks,
FLOP counting and plotting are the tools' own, in ``mmpvt_tools`` (not installed).

Only the runner functions are imported here: :mod:`.inference` imports mmdet's and mmseg's
inferencers (2 s), which training and testing do not need."""
from .runner import (build_runner, configure_test, configure_train, exit_process,
                     find_resume_checkpoint, load_config, run_test, run_train)

__all__ = [
    'build_runner', 'configure_test', 'configure_train', 'exit_process', 'find_resume_checkpoint',
    'load_config', 'run_test', 'run_train'
]
