"""Claims: the findings a chapter states, checked every time it runs; and checks for exercises.

gt.claim(condition, "sentence", margin=..., number=value, ...) shows the sentence with the numbers behind it when
it holds; when it does not, it shows it marked as failed and raises ClaimFailed (which fails the notebook, the
tests and the book build). The margin says how far the measured value is from the claim's threshold, in the
claim's own units (positive: held), so a reader sees which findings are solid and which are close calls.
In a notebook the claim is displayed as HTML that carries its record (statement, numbers, margin, scale) in a data
attribute, from which the book's "Claims" page is built (book/_ext/claims_page.py) and bench/claims_across_seeds.py
reads the claims of executed notebooks.
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
    margin: float | None = None

    def numbers(self) -> str:
        return ", ".join(f"{key} = {_format(value)}" for key, value in self.evidence.items())

    def __str__(self) -> str:
        mark = "✔" if self.held else "✘ FAILED:"
        return f"{mark} {self.statement}" + (f"  [{self.numbers()}]" if self.evidence else "") + self._margin_text()

    def _margin_text(self) -> str:
        return "" if self.margin is None else f"  (margin {_format(self.margin)})"

    def record(self) -> dict[str, Any]:
        """What the book's Claims page lists: the statement, the numbers, the margin, whether it held, at which
        scale and seed draw."""
        from .config import scale, seed_offset

        return {"statement": self.statement, "held": self.held, "numbers": self.numbers(), "margin": self.margin,
                "scale": scale(), "seed_draw": seed_offset()}

    def _repr_html_(self) -> str:
        data = html.escape(json.dumps(self.record()), quote=True)
        numbers = f' <span class="gentools-claim-numbers">[{html.escape(self.numbers())}]</span>' if self.evidence else ""
        margin = f' <span class="gentools-claim-margin">{html.escape(self._margin_text().strip())}</span>' if self.margin is not None else ""
        state = "" if self.held else " gentools-claim-failed"
        mark = "✔" if self.held else "✘ failed:"
        return (f'<div class="gentools-claim{state}" data-claim="{data}"><span class="gentools-claim-mark">'
                f'{mark}</span> {html.escape(self.statement)}{numbers}{margin}</div>')


RECORDED: list[Claim] = []


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=3, separator=", ")
    return str(value)


def claim(condition: Any, statement: str, *, margin: float | None = None, scales: tuple[str, ...] | None = None,
          **evidence: Any) -> None:
    """Record a finding and show it with its numbers; show it as failed and raise ClaimFailed with the evidence if
    `condition` is false.

    `margin`: how far the measured value lies from the claim's threshold, in the claim's own units (for "a >= 0.2",
    a - 0.2; for a claim with several conditions, the smallest of their margins in comparable units). It must be
    positive when the claim holds and negative when it fails (0: on the threshold, either way), so it cannot
    contradict the condition. `scales`: the scales whose runs
    have the data the claim needs (a tiny run's few examples and seeds cannot settle some findings); at any other
    scale the sentence is shown with its numbers as not checked, and is not a claim of that run. Returns nothing, so
    a claim at the end of a cell shows its sentence once (RECORDED keeps every claim)."""
    from .config import scale

    if scales is not None and scale() not in scales:
        numbers = Claim(statement, True, evidence, margin)
        print(f"not checked at the {scale()} scale (a claim of the {' and '.join(scales)} scale): {statement}"
              + (f"  [{numbers.numbers()}]" if evidence else ""))
        return
    held = bool(condition)
    if margin is not None:
        margin = float(margin)
        if not math.isnan(margin) and (margin > 0) != held and margin != 0:
            raise ValueError(f"the margin {margin:.4g} of the claim {statement!r} says it "
                             f"{'held' if margin > 0 else 'failed'}, its condition says the opposite")
    result = Claim(statement, held, evidence, margin)
    RECORDED.append(result)
    _show(result)  # a failed claim is shown too: the Claims page lists it, first and in red
    if not held:
        # no mark in the message: the book's traceback lexer stumbles on the non-ASCII ✘
        raise ClaimFailed(f"Claim failed: {statement}\n  evidence: {result.numbers()}{result._margin_text()}\n"
                          "The chapter's finding did not reproduce in this run; its text is wrong for this setting.")


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
