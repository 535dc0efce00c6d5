"""A chapter's session: gt.setup(), its first line (seeds, plot style, and which scale and device the run uses)."""
from __future__ import annotations

from . import config, device, plots


def setup(seed: int = 0) -> dict[str, object]:
    """Seed everything, set the house plot style, and say which scale and device this run uses. With GENTOOLS_SEED=k
    every seed of the chapter is shifted (gt.device.run_seed): the same experiments on another draw of randomness."""
    device.seed_everything(seed)
    plots.style()
    info = {"scale": config.scale(), "device": str(device.device()), "seed": seed,
            "seed draw (GENTOOLS_SEED)": config.seed_offset(), "cache": str(config.cache_dir())}
    print("gentools: " + ", ".join(f"{key} {value}" for key, value in info.items()))
    return info
