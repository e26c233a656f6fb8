"""Score activations the heads' post-processing shares, in numpy (float32 in, float32 out)."""
import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, any shape."""
    return 1.0 / (1.0 + np.exp(-x))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits in float32 (the row maximum is subtracted first so that
    large logits cannot overflow exp)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
