"""gentools: the helper package behind the course on generalization in deep learning.

`import gentools as gt`, then gt.setup(), gt.data.load(...), gt.Settings(...), gt.fit(...), gt.sweep(...), gt.claim(...).
"""
from . import attacks, biasvar, checks, config, data, device, ensemble, executors, fingerprint, gradients, kernels, linear, losses, measures, models, plots, prune, regularize, settings, shift, stats, train, transfer
from .claims import claim
from .config import pick, scale
from .device import seed_everything
from .session import setup
from .settings import Settings
from .sweep import SweepIncomplete, packed, sweep
from .train import EarlyStopping, History, StopAt, evaluate, fit, fitted

__version__ = "0.1.0"

__all__ = [
    "EarlyStopping", "History", "StopAt", "attacks", "biasvar", "checks", "claim", "config", "data", "device", "ensemble",
    "evaluate", "executors", "fit", "fitted", "gradients", "kernels", "linear", "losses", "measures", "models", "packed", "pick", "plots", "prune", "regularize", "scale", "seed_everything", "settings", "Settings", "setup", "shift", "stats", "sweep", "SweepIncomplete", "train", "transfer",
]
