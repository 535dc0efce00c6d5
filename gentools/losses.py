"""The losses every trainer shares, defined once: per example, and averaged over a batch."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor


def per_example_loss(name: str, n_classes: int | None, label_smoothing: float = 0.0) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss of every example (one value per row of the outputs, any leading dimensions): cross-entropy
    (optionally against smoothed labels, PyTorch's definition), or squared error (summed over classes against
    one-hot targets; averaged over outputs for regression).
    fit(), the stacked trainer of gt.ensemble and gt.gradients all reduce this one definition."""
    if label_smoothing and name != "cross_entropy":
        raise ValueError("label_smoothing applies to loss='cross_entropy' only.")
    if name == "cross_entropy":
        if not n_classes:
            raise ValueError("cross_entropy needs class labels; use loss='mse' for regression.")
        # classes moved to dim 1 (PyTorch's layout for extra dimensions): on a CPU 3x faster than flattening the
        # leading dimensions, whose log-softmax over rows of 10 is slow
        return lambda out, y: F.cross_entropy(out.movedim(-1, 1) if out.dim() > 2 else out, y, reduction="none",
                                              label_smoothing=label_smoothing)
    if name == "mse":
        if n_classes:
            return lambda out, y: (out - F.one_hot(y, n_classes).to(out.dtype)).pow(2).sum(-1)
        return lambda out, y: (out - y).pow(2).mean(-1)
    raise ValueError(f"Unknown loss {name!r}; use 'cross_entropy' or 'mse'.")


def mean_loss(name: str, n_classes: int | None, label_smoothing: float = 0.0) -> Callable[[Tensor, Tensor], Tensor]:
    """Mean loss over a batch."""
    each = per_example_loss(name, n_classes, label_smoothing)
    return lambda out, y: each(out, y).mean()
