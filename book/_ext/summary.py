"""The last lines `make book` prints: where the website is, and what failed, on one screen.

Usage: python book/_ext/summary.py HTML_FOLDER BUILD_STATUS. Reads the failures.json that book/_ext/claims_page.py
wrote at the end of the build; exits non-zero when anything failed (a claim, a cell, or the build itself).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def summary(html: Path, status: int) -> tuple[str, int]:
    index = (html / "index.html").resolve()
    report_path = html / "failures.json"
    if not report_path.exists():
        return (f"The book build failed before it finished (exit status {status}): see the messages above. "
                "No website was written." if not index.exists() else
                f"The build stopped before its report (exit status {status}); see above. The website is at file://{index}",
                status or 1)
    report = json.loads(report_path.read_text())
    failures = report["failures"]
    claims_page = (html / report["claims_page"]).resolve() if report.get("claims_page") else None
    lines = []
    for kind, word in (("claim", "claims"), ("error", "cells")):
        found = [failure for failure in failures if failure["kind"] == kind]
        if found:
            what = "; ".join(f'{failure["chapter"]}: "{_short(failure["what"])}"' for failure in found)
            lines.append(f"{len(found)} {word if len(found) > 1 else word[:-1]} failed: {what}")
    if not failures and status == 0:
        return f"The book is at file://{index}", 0
    if not failures:
        lines.append(f"The build reported problems (exit status {status}): see the warnings above.")
    where = f"The website is at file://{index}"
    if claims_page and failures:
        where += f"; failures are listed at file://{claims_page}"
    return "\n".join(lines + [where]), status or 1


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


if __name__ == "__main__":
    message, code = summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(message)
    sys.exit(code)
