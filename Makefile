# The two commands of the README (both create .venv and install what they need):
#   make book   build the HTML book into _build/html (executing every notebook)
#   make test   run every test: library, notebooks (nbval), strict build, browser
# and, for maintainers:
#   make notebooks   re-execute the chapters in place, refreshing their stored outputs
#   make train       the training CLI with its defaults on the digits

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test notebooks train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -n -W --keep-going
	@echo "Open _build/html/index.html in a browser (works offline)."

test: $(STAMP)
	bash scripts/install_chromium.sh
	$(BIN)/python -m pytest

notebooks: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py

train: $(STAMP)
	$(BIN)/python -m mlp_core train

clean:
	rm -rf _build artifacts
