# The README's commands. Every target installs what it needs first (.ci/install).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lab test unit docs staging

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/apt-packages .ci/install
	.ci/install
	touch $@

# The main job on the embedded default: bring the local lab up, deploy the cluster onto it and
# publish its DNS records to the lab's authority.
lab: install
	$(BIN)/mailstack lab up
	$(BIN)/pyinfra -y inventories/lab.py deploys/mail_cluster.py
	$(BIN)/mailstack dns push --inventory inventories/lab.py
	$(BIN)/mailstack lab login

# Every test: testinfra and end-to-end tests on the lab (brought up and torn down
# unless it was already running), and the unit tests.
test: install
	$(BIN)/pytest tests --inventory inventories/lab.py

unit: install
	$(BIN)/pytest tests/unit

docs: install
	$(BIN)/python -m mailstack.config.reference docs/configuration.md

# Staging on Vagrant VMs (docs/staging.md): destroy, vagrant up, deploy, verify. Without Internet
# or KVM: MAILSTACK_BOX=mailstack/bookworm64 MAILSTACK_LIBVIRT_DRIVER=qemu make staging
STAGING ?= inventories/staging.py
staging: install
	$(BIN)/mailstack staging rebuild --inventory $(STAGING)
