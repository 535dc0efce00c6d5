"""Does every claim hold for other seeds? Every chapter at a scale for GENTOOLS_SEED = 0, 1, 2, one table.

A claim is a finding about the phenomenon, not about one draw of randomness: this script executes the chapters with
each seed draw (GENTOOLS_SEED shifts every seed a chapter uses: initialisation, batch order, validation and
resampling splits, label noise; the reference data sets stay fixed), each draw with its own cache (kept, so a rerun
trains only what changed), and prints one table: claim x seed, held or not, and the claim's margin (how far its
measured value is from its threshold, in the claim's own units). Then the smallest margins.

    python bench/claims_across_seeds.py --scale book             # or: make verify (SCALE=tiny for the quick one)
    python bench/claims_across_seeds.py --scale tiny --chapters 03 04 --seeds 0 1 2
    python bench/claims_across_seeds.py --scale book --seeds 1 2 --executed 0=_build/jupyter_execute/notebooks

`--executed SEED=FOLDER` reads the claims of notebooks already executed with that seed (make book keeps them in
_build/jupyter_execute/notebooks) instead of executing them again. Exits non-zero if any claim failed or any
cell stopped with an error.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIM = re.compile(r'<div class="gentools-claim[^"]*" data-claim="([^"]*)"')


def execute(notebook: Path, scale: str, seed: int, folder: Path, workers: int, timeout: int) -> Path:
    """Execute one chapter with GENTOOLS_SEED=seed (errors kept in the outputs, as in the book) into folder."""
    import nbformat
    from nbclient import NotebookClient

    from gentools.nbexec import reliable_replies

    reliable_replies()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as make sets it: two threads on busy cores stall (README)
    os.environ.update(GENTOOLS_SCALE=scale, GENTOOLS_SEED=str(seed), GENTOOLS_WORKERS=str(workers),
                      GENTOOLS_PROGRESS="0", GENTOOLS_CACHE=str(ROOT / "_build" / "seed-caches" / f"{scale}-seed{seed}"))
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / notebook.name)
    return folder / notebook.name


def claims_and_errors(executed: Path) -> tuple[list[dict], list[str]]:
    """The claims an executed notebook displayed (held or failed), in order, and its cells' errors."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    claims, errors = [], []
    for index, cell in enumerate(nb.cells):
        found = [json.loads(html.unescape(match)) for output in cell.get("outputs", [])
                 for match in CLAIM.findall("".join(output.get("data", {}).get("text/html", "")))]
        claims += [{**record, "key": (index, order)} for order, record in enumerate(found)]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != "ClaimFailed":
                errors.append(f"{output['ename']}: {output['evalue'][:200]}")
    return claims, errors


def table(results: dict[int, dict[str, tuple[list[dict], list[str]]]], chapters: list[str]) -> tuple[str, list, bool]:
    """The claims x seeds table (a claim is the n-th claim of its cell, so that a failed claim, which stops its
    cell, shifts no other row; named by its statement in the first seed that made it); and whether everything
    held."""
    seeds = sorted(results)
    lines = [f"{'chapter':8} {'#':>3}  {'claim':70}" + "".join(f"  {'seed ' + str(s):>14}" for s in seeds)]
    margins, everything_held = [], True
    for chapter in chapters:
        keys = sorted({record["key"] for s in seeds for record in results[s][chapter][0]})
        for number, key in enumerate(keys):
            cells, statement = [], None
            for s in seeds:
                claims = {record["key"]: record for record in results[s][chapter][0]}
                if key not in claims:
                    cells.append("did not run")
                    everything_held = False
                    continue
                record = claims[key]
                statement = statement or record["statement"]
                margin = record.get("margin")
                everything_held &= record["held"]
                cells.append(("held" if record["held"] else "FAILED") + ("" if margin is None else f" {margin:+.3g}"))
                if margin is not None:
                    margins.append((margin, chapter, number + 1, s, record["statement"]))
            lines.append(f"{chapter:8} {number + 1:>3}  {(statement or '')[:70]:70}" + "".join(f"  {c:>14}" for c in cells))
        for s in seeds:
            for error in results[s][chapter][1]:
                everything_held = False
                lines.append(f"{chapter:8}   !  a cell stopped at seed {s}: {error[:120]}")
    return "\n".join(lines), sorted(margins)[:10], everything_held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="book", choices=["tiny", "book", "paper"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers (01 03 ...); default: all")
    parser.add_argument("--executed", action="append", default=[], metavar="SEED=FOLDER",
                        help="read this seed's executed notebooks from FOLDER instead of executing them")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="GENTOOLS_WORKERS for the sweeps")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may run")
    args = parser.parse_args()
    given = {int(seed): Path(folder) for seed, folder in (item.split("=", 1) for item in args.executed)}
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.chapters:
        notebooks = [nb for nb in notebooks if nb.name[:2] in {c.zfill(2) for c in args.chapters}]
    seeds = sorted(set(args.seeds) | set(given))
    results: dict[int, dict[str, tuple[list[dict], list[str]]]] = {}
    for seed in seeds:
        results[seed] = {}
        for notebook in notebooks:
            if seed in given:
                executed = given[seed] / notebook.name
            else:
                start = time.perf_counter()
                executed = execute(notebook, args.scale, seed, ROOT / "_build" / "seeds" / f"{args.scale}-seed{seed}",
                                   args.workers, args.timeout)
                print(f"seed {seed}: {notebook.stem} executed in {time.perf_counter() - start:.0f} s", flush=True)
            results[seed][notebook.stem[:2]] = claims_and_errors(executed)
    text, smallest, held = table(results, [nb.stem[:2] for nb in notebooks])
    print(f"\nClaims at the {args.scale} scale for GENTOOLS_SEED = {', '.join(map(str, seeds))} "
          "(held or FAILED, and the margin: how far the measured value is from the claim's threshold)\n")
    print(text)
    if smallest:
        print("\nThe smallest margins:")
        for margin, chapter, number, seed, statement in smallest:
            print(f"  {margin:+.3g}  chapter {chapter} claim {number} (seed {seed}): {statement[:100]}")
    counts = [sum(r["held"] for chapter in results[s].values() for r in chapter[0]) for s in seeds]
    totals = [sum(len(chapter[0]) for chapter in results[s].values()) for s in seeds]
    print("\n" + "; ".join(f"seed {s}: {c} of {t} claims held" for s, c, t in zip(seeds, counts, totals)))
    return 0 if held else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
