"""The two ways a checkpoint can fail to load: it cannot be read, or it does not fit."""


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model: another family, missing/unexpected keys, shapes."""


class CheckpointReadError(ValueError):
    """The checkpoint could not be read (missing, truncated, not a PyTorch file, download
    failed)."""
