"""What the tools do, as functions: train/test runners (:mod:`.runner`), inference with mmdet's
/mmseg's inferencers (:mod:`.inference`), the demo and its synthetic data (:mod:`.demo`,
:mod:`.demo_data`), the paper's Figure 5 on that data (:mod:`.figure5`), parameter and FLOP
counts (:mod:`.complexity`) and the side-by-side benchmarks (:mod:`.benchmark`,
:mod:`.deploy_benchmark`).

Only the runner functions are imported here: :mod:`.inference` imports mmdet's and mmseg's
inferencers (2 s), which training and testing do not need."""
from .runner import (build_runner, configure_test, configure_train, find_resume_checkpoint,
                     load_config, run_test, run_train)

__all__ = ['build_runner', 'configure_test', 'configure_train', 'find_resume_checkpoint',
           'load_config', 'run_test', 'run_train']
