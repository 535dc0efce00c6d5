"""Claims: the findings a chapter states, checked every time it runs; and checks for exercises.

gt.claim(condition, "sentence", number=value, ...) shows the sentence with the numbers behind it when it
holds, and raises ClaimFailed (which fails the notebook, the tests and the book build) when it does not.
In a notebook the claim is displayed as HTML that carries its record (statement, numbers, scale) in a data
attribute, from which the book's "Claims" page is built (book/_ext/claims_page.py).
"""
from __future__ import annotations

import html
import json
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

    def numbers(self) -> str:
        return ", ".join(f"{key} = {_format(value)}" for key, value in self.evidence.items())

    def __str__(self) -> str:
        mark = "✔" if self.held else "✘"
        return f"{mark} {self.statement}" + (f"  [{self.numbers()}]" if self.evidence else "")

    def record(self) -> dict[str, Any]:
        """What the book's Claims page lists: the statement, the numbers, whether it held, at which scale."""
        from .config import scale

        return {"statement": self.statement, "held": self.held, "numbers": self.numbers(), "scale": scale()}

    def _repr_html_(self) -> str:
        data = html.escape(json.dumps(self.record()), quote=True)
        numbers = f' <span class="gentools-claim-numbers">[{html.escape(self.numbers())}]</span>' if self.evidence else ""
        return (f'<div class="gentools-claim" data-claim="{data}"><span class="gentools-claim-mark">'
                f'{"✔" if self.held else "✘"}</span> {html.escape(self.statement)}{numbers}</div>')


RECORDED: list[Claim] = []


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=3, separator=", ")
    return str(value)


def claim(condition: Any, statement: str, **evidence: Any) -> None:
    """Record a finding and show it with its numbers; raise ClaimFailed with the evidence if `condition` is false.

    Returns nothing, so a claim at the end of a cell shows its sentence once (RECORDED keeps every claim)."""
    held = bool(condition)
    result = Claim(statement, held, evidence)
    RECORDED.append(result)
    if not held:
        raise ClaimFailed(f"Claim failed: {statement}\n  evidence: {result}\n"
                          "The chapter's finding did not reproduce in this run; its text is wrong for this setting.")
    _show(result)


def _show(result: Claim) -> None:
    """HTML with its record in a notebook (for the book's Claims page), plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and getattr(get_ipython(), "kernel", None) is not None:
        display({"text/plain": str(result), "text/html": result._repr_html_()}, raw=True)
    else:
        print(result)


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
