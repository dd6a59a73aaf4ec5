# The two commands of the README (both create .venv and install what they need):
#   make book   build the HTML book into _build/html (executing every notebook)
#   make test   run every test: library, notebooks (nbval), strict build, browser
# and, for maintainers:
#   make check       ruff (lint + format check) and the unit tests that need neither the
#                    book build, nor a browser, nor a GPU (fast feedback; prints its time)
#   make notebooks   re-execute the chapters in place, refreshing their stored outputs
#   make train       the training CLI with its defaults on the digits

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test check notebooks train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,mpi]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -n -W --keep-going
	@echo "Open _build/html/index.html in a browser (works offline)."

test: $(STAMP)
	bash scripts/install_chromium.sh
	$(BIN)/python -m pytest

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
