"""mmpvt's information lines in mmengine's log: the plain PyTorch families write to the Python
logger ``'mmpvt'``; with OpenMMLab loaded, its records go to mmengine's current logger (the
training log and console of the running Runner), and nowhere else."""
import logging

from mmengine.logging import print_log


class CurrentMMLogger(logging.Handler):
    """Hands each record to mmengine's current logger, at its level."""

    def emit(self, record: logging.LogRecord) -> None:
        print_log(record.getMessage(), logger='current', level=record.levelno)


def forward_to_mmengine() -> None:
    """Route the ``'mmpvt'`` logger to mmengine's current logger (once; INFO and above)."""
    logger = logging.getLogger('mmpvt')
    if not any(isinstance(h, CurrentMMLogger) for h in logger.handlers):
        logger.addHandler(CurrentMMLogger())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # mmengine's handlers print it; the root logger's would repeat it
