"""pytest's hooks for the whole run (nbval's notebooks and tests/ alike; the fixtures live in tests/conftest.py).

Where a `make test` run spends its time, printed at its end: each phase's total of setup, call and teardown (the
book build is paid by whichever test first asks for it: the book's or the website's).
"""
PHASES = {"notebooks/": "chapters at the tiny scale (nbval)", "tests/test_book.py": "the book built from the cache",
          "tests/test_website.py": "the book built from the cache", "tests/test_assignments.py": "the student edition"}
_PHASE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    phase = next((name for prefix, name in PHASES.items() if report.nodeid.startswith(prefix)), "unit tests")
    _PHASE_SECONDS[phase] = _PHASE_SECONDS.get(phase, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _PHASE_SECONDS:
        terminalreporter.section("time by phase")
        for phase, seconds in sorted(_PHASE_SECONDS.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.0f} s  {phase}")
