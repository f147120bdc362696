# The README's commands. Every target installs what it needs first (.ci/install).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lab test unit docs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/apt-packages .ci/install
	.ci/install
	touch $@

# The main job on the embedded default: render every file of the lab inventory for review.
lab: install
	$(BIN)/mailstack validate --inventory inventories/lab.py
	$(BIN)/mailstack render --inventory inventories/lab.py --out out/lab

# Every test: unit, then the live tiers.
test: install
	$(BIN)/pytest tests

unit: install
	$(BIN)/pytest tests/unit

docs: install
	$(BIN)/python -m mailstack.config.reference docs/configuration.md
