"""Runner hooks of mmpvt's tools."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..models.checkpoints.whole_model import fit_state_dict
from ..registry import HOOKS


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Fit every checkpoint the Runner loads (``load_from``, ``--resume``) to the model before it
    is loaded: see :func:`~mmpvt.models.checkpoints.whole_model.fit_state_dict`.

    Args:
        strict: True (``tools/test.py``, resuming): a key of the model the file lacks, a key it
            does not have or a shape that differs is an error naming them. False (``load_from``
            for fine-tuning): those keep the model's initial weights, with one log line.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = getattr(runner, '_load_from', None) or 'being loaded'
        fit_state_dict(model, checkpoint, str(source), strict=self.strict)
