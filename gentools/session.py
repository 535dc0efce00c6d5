"""A chapter's session: gt.setup(), its first line (seeds, plot style, and which scale and device the run uses)."""
from __future__ import annotations

from . import config, device, plots


def setup(seed: int = 0) -> dict[str, object]:
    """Seed everything, set the house plot style, and say which scale and device this run uses."""
    device.seed_everything(seed)
    plots.style()
    info = {"scale": config.scale(), "device": str(device.device()), "seed": seed, "cache": str(config.cache_dir())}
    print("gentools: " + ", ".join(f"{key} {value}" for key, value in info.items()))
    return info
