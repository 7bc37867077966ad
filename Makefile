# Everything a newcomer needs: `make test` builds its own virtual environment from the package registry.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# checkov pins an older boto3 than the tests use, so it lives in a virtual environment of its own.
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet checkov==3.3.30
	touch $(TOOLS_STAMP)

test: $(STAMP) $(TOOLS_STAMP)
	CHECKOV=$(TOOLS)/bin/checkov $(BIN)/pytest

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .build
