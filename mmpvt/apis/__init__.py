"""What the tools do, as functions: train/test runners (:mod:`.runner`) and single-image
inference with mmdet's/mmseg's inferencers (:mod:`.inference`)."""
from .inference import draw_predictions
from .runner import (build_runner, configure_test, configure_train, find_resume_checkpoint,
                     load_config, run_test)

__all__ = ['build_runner', 'configure_test', 'configure_train', 'draw_predictions',
           'find_resume_checkpoint', 'load_config', 'run_test']
