"""Numbers in the chapters' prose come from the run, not from the author's keyboard.

A measured number typed into a markdown cell is true for one seed at one scale and false elsewhere. So every
number in the prose that looks like a measurement (a percentage, a decimal, "N times", "N points")
must be one of: in a sentence that cites its source ({cite}: a published number), inside math or code, or
listed below for its chapter as a setting, a claim's threshold or an arithmetic fact. A number that is none of these
fails the test: print it from the cell that measures it (or glue it), or say which claim's range it is. This test
cannot tell a setting from a measurement by itself; the list is where a person has told it, one reason a number.
"""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# chapter -> numbers in its prose that are not measurements of the run (settings, thresholds, facts)
NOT_MEASURED = {
    "01": {"0.01": "learning rate", "20%": "held-out share", "0.001": "learning rate", "5 points": "exercise threshold",
           "95%": "confidence level"},
    "02": {"0.6": "noise level of the exercise", "0.01": "learning rate"},
    "03": {"0.09": "1/sqrt(fan-in) for the first layer, arithmetic", "3 points": "matched-accuracy tolerance",
           "0.0": "exact zero", "10%": "stretch of the augmentation; chance with 10 classes", "0.3": "dropout probability",
           "5%": "test level"},
    "04": {"0.3": "dropout probability", "5%": "test level"},
    "05": {"0.5": "corruption level", "10%": "chance with 10 classes", "20%": "corruption level", "0.05": "weight decay",
           "4 points": "Zhang et al.'s figure for batch normalization (3 to 4 points)", "2 points": "a claim's threshold"},
    "06": {"20%": "label noise", "0.01": "learning rate", "0.9": "momentum", "15%": "label noise",
           "0.03": "feature scale", "0.2": "feature scale",
           **{n: "the reference notebooks' published runs (ANCHORS)" for n in ("54%", "45.5%", "68.5%", "37.3%", "57%", "46%",
                                                                            "56%", "44%")}},
    "07": {"20%": "pruning rate", "10%": "pruning rate", "1.7%": "0.8 ** 19, arithmetic", "0.0012": "learning rate",
           "3 points": "exercise threshold", "50%": "exercise setting", "5%": "exercise setting",
           "15%": "a claim's threshold; the paper's pruning rate", "0.0002": "the paper's learning rate",
           "0.0003": "the paper's learning rate", "21%": "Frankle & Carbin's figure", "38%": "Frankle & Carbin's figure",
           "2.51 times": "Frankle & Carbin's figure"},
    "08": {"1.5": "prediction's tolerance", "20%": "label noise", "18%": "20% times 9/10, arithmetic",
           "3 points": "a claim's threshold", "0.05": "learning rate", "0.01": "learning rate",
           "0.9": "momentum", "0.5": "learning rate", "60%": "the level of clean fit at which rules are compared, a setting"},
    "09": {"100%": "the bound of the worst case", "0.38": "standard deviation of the digits data set (fixed data)",
           "0.3": "budget", "1.6%": "1/64, arithmetic", "0.1": "budget", "2 points": "a claim's threshold"},
    "10": {"5 points": "a claim's threshold", "20%": "prediction's tolerance"},
}

MEASURE_LIKE = re.compile(r"(?<![\w.$\\/-])(\d+(?:\.\d+)?)\s*(%|times\b|points\b)|(?<![\w.$\\/-])(\d*\.\d+)")


def prose(text):
    """Markdown with its math, code, links and labels taken out."""
    for pattern in (r"\$\$.*?\$\$", r"\$[^$]*\$", r"```.*?```", r"`[^`]*`", r"\]\([^)]*\)", r"\([\w-]+\)=",
                    r"(?i)(?:section|figure|table|chapter|version)s? \d+(?:\.\d+)*"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return text


def measured_looking(paragraph):
    found = []
    for match in MEASURE_LIKE.finditer(prose(paragraph)):
        number, unit, decimal = match.groups()
        found.append(decimal if decimal else f"{number}{'' if unit == '%' else ' '}{unit}")
    return found


def test_the_scanner_finds_what_it_should():
    assert measured_looking("it reaches 93.4% and is 2.5 times faster, 3 points up, at 0.37 error") == \
        ["93.4%", "2.5 times", "3 points", "0.37"]
    assert measured_looking("the loss $L = 0.5 x^2$ and `lr=0.05` in section 5.4 of [the paper](a/b.md)") == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_hand_typed_measurement_in_the_prose(notebook):
    chapter = notebook.name[:2]
    allowed = NOT_MEASURED.get(chapter, {})
    offenders = []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"\s+", " ", "".join(cell["source"]))
        for sentence in re.split(r"(?<=[.;:!?])\s+(?=[A-Z*(])", text):
            if "{cite}" in sentence:
                continue
            offenders += [f"cell {index}: {number!r} in {sentence.strip()[:110]!r}"
                          for number in measured_looking(sentence) if number not in allowed]
    assert not offenders, ("numbers that look measured but are typed into the prose (print or glue them from the run, "
                           "or list them in NOT_MEASURED with their reason):\n" + "\n".join(offenders))
