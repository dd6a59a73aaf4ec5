# The two commands of the README (both create .venv and install what they need):
#   make book   build the HTML book into _build/html (executing every notebook)
#   make test   run every test: library, notebooks (nbval), strict build, browser (with an
#               accessibility audit), then nbval again under OpenBLAS's Haswell kernels
# and, for maintainers:
#   make check       ruff (lint + format check) and the unit tests that need neither the
#                    book build, nor a browser, nor a GPU (fast feedback; prints its time)
#   make test-haswell  only that second nbval pass
#   make notebooks   re-execute the chapters in place, refreshing their stored outputs
#   make train       the training CLI with its defaults on the digits

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test test-haswell check notebooks train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -n -W --keep-going
	@echo "Open _build/html/index.html in a browser (works offline)."

# axe-core (npm) for the accessibility audit of the browser test, from tests/book/package-lock.json
AXE := tests/book/node_modules/axe-core/axe.min.js
# OpenBLAS's AVX2 kernels on one thread: on an AVX-512 machine, the kernels of a student's laptop
HASWELL := OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1

$(AXE): tests/book/package.json tests/book/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	    npm ci --prefix tests/book --no-audit --no-fund && touch $@; \
	else \
	    echo "make: npm not found: the accessibility test will fail; install Node.js (npm)"; \
	fi

# Everything once (the library, nbval, the strict build, the browser), then nbval alone a
# second time under other BLAS kernels; fails if either pass failed.
test: $(STAMP) $(AXE)
	bash scripts/install_chromium.sh
	@status=0; \
	$(BIN)/python -m pytest || status=$$?; \
	echo "== nbval again with $(HASWELL)"; \
	$(HASWELL) $(BIN)/python -m pytest book/ -p no:cacheprovider || status=$$?; \
	exit $$status

# Only the second nbval pass (about a minute).
test-haswell: $(STAMP)
	$(HASWELL) $(BIN)/python -m pytest book/ -p no:cacheprovider

check: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && \
	$(BIN)/python -m pytest tests -q -p no:nbval -m "not book and not gpu and not slow" -o addopts="" && \
	echo "make check: passed in $$(( $$(date +%s) - start )) s"

notebooks: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py

train: $(STAMP)
	$(BIN)/python -m mlp_core train

clean:
	rm -rf _build artifacts
