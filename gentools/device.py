"""Which device to use, how to make a run repeatable, and mixed precision on CUDA."""
from __future__ import annotations

import contextlib
import operator
import os
import random

import numpy as np
import torch

from . import config


def device() -> torch.device:
    """cuda > mps > cpu, unless GENTOOLS_DEVICE names one (for example `cpu` or `cuda:1`)."""
    requested = os.environ.get("GENTOOLS_DEVICE", "").strip()
    if requested:
        try:
            chosen = torch.device(requested)
        except RuntimeError as error:
            raise ValueError(f"GENTOOLS_DEVICE={requested!r} is not a device name; try cpu, cuda or mps.") from error
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available(),
        }.get(chosen.type, False)
        if not available:
            raise ValueError(f"GENTOOLS_DEVICE={requested!r}, but this machine has no such device; unset it or use cpu.")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# Seeds of different GENTOOLS_SEED draws lie this far apart, so that no chapter's seed (they stay below a few
# thousand) of one draw is a seed of another.
SEED_STRIDE = 1_000_003


def run_seed(seed: int) -> int:
    """The seed actually used for a chapter's `seed`: shifted by GENTOOLS_SEED (config.seed_offset), so one variable
    redraws every random choice a chapter makes, and seed 0 of the default draw is seed 0."""
    return operator.index(seed) + SEED_STRIDE * config.seed_offset()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices), so the same seed gives the same numbers (shifted by
    GENTOOLS_SEED, see run_seed). Any integer will do, a NumPy one included."""
    seed = run_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def random_state_kept():
    """Leave Python's, NumPy's and PyTorch's generators as they were: the cells after a cached step (a sweep's run, a
    gt.fitted model) then draw the same numbers whether it was computed or read from the cache."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng():
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def generator(seed: int) -> torch.Generator:
    """A CPU generator for shuffling and sampling: the same on every device, so batch orders match (its seed shifted
    by GENTOOLS_SEED, see run_seed)."""
    return torch.Generator().manual_seed(run_seed(seed))


def autocast(dev: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (fast matmuls on tensor cores); full precision elsewhere."""
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
