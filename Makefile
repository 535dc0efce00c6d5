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

.PHONY: book test lab dist assignments grade browser bench clean strip

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: $(BIN)/.installed  ## build the website, every chapter executed at GENTOOLS_SCALE=$(SCALE)
	GENTOOLS_SCALE=$(SCALE) GENTOOLS_WORKERS=$${GENTOOLS_WORKERS:-$$(nproc)} $(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Every test run trains from scratch (a fresh cache); the book build of the tests then reuses the notebooks' sweeps.
test: $(BIN)/.installed browser  ## unit tests, notebooks at the tiny scale, the book built at the tiny scale, the website in a browser
	rm -rf _build/test-cache
	GENTOOLS_SCALE=tiny GENTOOLS_CACHE=$(CURDIR)/_build/test-cache GENTOOLS_CELL_TIMEOUT=$(CELL_TIMEOUT) \
		$(BIN)/python -m pytest notebooks tests --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) --durations=10

lab: $(BIN)/.installed  ## JupyterLab on the notebooks, at GENTOOLS_SCALE=$(SCALE)
	GENTOOLS_SCALE=$(SCALE) $(BIN)/jupyter lab notebooks/

dist: $(BIN)/.installed  ## a wheel of gentools in dist/, to install where the repository is not (for example on Colab)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

assignments: $(BIN)/.installed  ## the student edition: every answer stubbed, every check kept, in _build/assignments
	$(BIN)/python -m gentools.assignments student notebooks _build/assignments

grade: $(BIN)/.installed  ## grade the student notebooks in SUBMISSIONS=folder: checks passed and points, per notebook
	GENTOOLS_SCALE=$${GENTOOLS_SCALE:-tiny} $(BIN)/python -m gentools.assignments grade $(SUBMISSIONS)

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

strip: $(BIN)/.installed  ## strip outputs from the notebooks before committing
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf _build dist build
