"""Claims: the findings a chapter states, checked every time it runs; and checks for exercises.

gt.claim(condition, "sentence", number=value, ...) prints the sentence with the numbers behind it when it
holds, and raises ClaimFailed (which fails the notebook, the tests and the book build) when it does not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


class ClaimFailed(AssertionError):
    """A chapter's finding did not hold in this run."""


class CheckFailed(AssertionError):
    """An exercise's answer is not right yet."""


@dataclass(frozen=True)
class Claim:
    statement: str
    held: bool
    evidence: dict[str, Any]

    def __str__(self) -> str:
        mark = "✔" if self.held else "✘"
        numbers = ", ".join(f"{key} = {_format(value)}" for key, value in self.evidence.items())
        return f"{mark} {self.statement}" + (f"  [{numbers}]" if numbers else "")


RECORDED: list[Claim] = []


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=3, separator=", ")
    return str(value)


def claim(condition: Any, statement: str, **evidence: Any) -> Claim:
    """Record a finding; raise ClaimFailed with the evidence if `condition` is false."""
    held = bool(condition)
    result = Claim(statement, held, evidence)
    RECORDED.append(result)
    if not held:
        raise ClaimFailed(f"Claim failed: {statement}\n  evidence: {result}\n"
                          "The chapter's finding did not reproduce in this run; its text is wrong for this setting.")
    print(result)
    return result


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def check(condition: Any, hint: str) -> None:
    """For exercises: say so when `condition` holds, or fail with a hint."""
    if not bool(condition):
        raise CheckFailed(f"Not yet: {hint}")
    print("✔ correct")


def check_close(actual: Any, expected: Any, hint: str, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """For exercises: `actual` must equal `expected` to the given tolerance."""
    actual_arr, expected_arr = _array(actual), _array(expected)
    if actual_arr.shape != expected_arr.shape:
        raise CheckFailed(f"Not yet: expected shape {expected_arr.shape}, got {actual_arr.shape}. {hint}")
    if not np.allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, equal_nan=False):
        worst = float(np.max(np.abs(actual_arr - expected_arr))) if actual_arr.size else math.nan
        raise CheckFailed(f"Not yet: off by up to {worst:.3g}. {hint}")
    print("✔ correct")
