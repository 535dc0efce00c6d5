# Two commands: `make book` builds the website, `make test` runs every test. Each sets itself up on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SCALE  ?= book
# Seconds one notebook cell may run, in nbval and in the book build of the tests: a tiny-scale cell takes about a
# minute at most, so a stalled kernel fails in minutes, naming its notebook and cell, instead of using up CI.
CELL_TIMEOUT ?= 300
# One PyTorch thread per process everywhere: with two OpenMP threads, any other load on a 2-core machine makes the
# threads spin against it (chapter 1 went from 37 s to over 300 s); one thread costs about 10% and never stalls.
export OMP_NUM_THREADS ?= 1

.PHONY: book test test-quick lab dist assignments grade browser bench clean strip lock verify

# requirements.txt says what the course needs; constraints.txt pins the exact versions its numbers were verified with.
$(BIN)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# A failing claim or cell does not stop the build: every page is written, the failure shows on its page and first on
# the Claims page, and the last lines say what failed (book/_ext/summary.py); the exit status is then non-zero.
book: $(BIN)/.installed  ## build the website, every chapter executed at GENTOOLS_SCALE=$(SCALE) (and GENTOOLS_SEED)
	@rm -f _build/html/failures.json
	@GENTOOLS_SCALE=$(SCALE) GENTOOLS_PROGRESS=$${GENTOOLS_PROGRESS:-0} GENTOOLS_WORKERS=$${GENTOOLS_WORKERS:-$$(nproc)} $(BIN)/jupyter-book build . -W --keep-going; \
		$(BIN)/python book/_ext/summary.py _build/html $$?

# Every test run trains from scratch (a fresh cache); the book build of the tests then reuses the notebooks' sweeps.
test: $(BIN)/.installed browser  ## unit tests, notebooks at the tiny scale, the book built at the tiny scale, the website in a browser
	rm -rf _build/test-cache
	GENTOOLS_SCALE=tiny GENTOOLS_CACHE=$(CURDIR)/_build/test-cache GENTOOLS_CELL_TIMEOUT=$(CELL_TIMEOUT) \
		$(BIN)/python -m pytest notebooks tests --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) --durations=10

# While working on one chapter: the unit tests (without the slow whole-book, browser, command and grading tests) and
# that chapter at the tiny scale, e.g. `make test-quick CHAPTER=05`. `make test` remains the check before a commit.
CHAPTER ?= 01
test-quick: $(BIN)/.installed  ## unit tests and chapter CHAPTER=NN at the tiny scale, in a few minutes
	rm -rf _build/test-quick-cache
	GENTOOLS_SCALE=tiny GENTOOLS_CACHE=$(CURDIR)/_build/test-quick-cache GENTOOLS_CELL_TIMEOUT=$(CELL_TIMEOUT) \
		$(BIN)/python -m pytest tests notebooks/$(CHAPTER)_*.ipynb --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) \
		--ignore=tests/test_website.py --ignore=tests/test_commands.py --ignore=tests/test_book.py \
		--ignore=tests/test_grading.py --ignore=tests/test_assignments.py -q

lab: $(BIN)/.installed  ## JupyterLab on the notebooks, at GENTOOLS_SCALE=$(SCALE)
	GENTOOLS_SCALE=$(SCALE) $(BIN)/jupyter lab notebooks/

dist: $(BIN)/.installed  ## a wheel of gentools in dist/, to install where the repository is not (for example on Colab)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

assignments: $(BIN)/.installed  ## the student edition: every answer stubbed, every check kept, in _build/assignments
	$(BIN)/python -m gentools.assignments student notebooks _build/assignments

# The instructor's checks, never the student's: each submission's answers are put into the instructor's notebook
# (gentools/grading.py). Results: _build/grades/grades.csv (students x checks) and a feedback page per student.
grade: $(BIN)/.installed  ## grade SUBMISSIONS=folder with the checks of notebooks/: a CSV of points, feedback pages
	GENTOOLS_SCALE=$${GENTOOLS_SCALE:-tiny} $(BIN)/python -m gentools.assignments grade $(SUBMISSIONS) \
		--source $${SOURCE:-notebooks} --out $${OUT:-_build/grades} $${GRADE_OPTIONS:-}

# Debian's Chromium for the website test, installed when missing and apt is ours to use; otherwise the test skips.
browser:
	@command -v chromium >/dev/null || [ -n "$$CHROMIUM" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
		&& echo "installed Debian's chromium for tests/test_website.py"; } || echo "no Chromium: tests/test_website.py will skip"

bench: $(BIN)/.installed  ## speed benchmarks and the chapters' code size; they print their figures
	$(BIN)/python bench/notebook_code.py
	$(BIN)/python bench/fit_speed.py
	$(BIN)/python bench/ensemble_speed.py
	$(BIN)/python bench/sweep_parallel.py
	$(BIN)/python bench/coherence_speed.py
	$(BIN)/python bench/double_descent_speed.py

# The newest versions requirements.txt allows, in a fresh environment, written to constraints.txt. Then verify the
# claims with them (make verify, and make book) before committing the new constraints.
lock:
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install --quiet --upgrade pip
	_build/lock-venv/bin/pip install --quiet -r requirements.txt
	{ sed -n '1,2p' constraints.txt; _build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e'; } > _build/constraints.new
	mv _build/constraints.new constraints.txt
	@echo "constraints.txt now pins the newest versions; run make verify and make book before committing it"

# Every chapter at SCALE for seeds 0, 1 and 2 (GENTOOLS_SEED), and one table of claims x seeds with their margins.
verify: $(BIN)/.installed  ## every claim at SCALE=$(SCALE) for three seeds: the claims x seeds table
	$(BIN)/python bench/claims_across_seeds.py --scale $(SCALE)

strip: $(BIN)/.installed  ## strip outputs from the notebooks before committing
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf _build dist build
