"""An mx host of Debian 13, deployed and verified in a lab of its own (inventories/lab-small.yml:
one lb and one mx container): the lab's mx pair runs Debian 12, so every run deploys and verifies
an mx host of both releases, Postfix 3.10, Dovecot 2.4 and Rspamd 3.12 included. It takes the
first deploy, passes the testinfra suites unchanged and takes a second deploy without a change.
Runs once the lab is down: one lab at a time."""

import os
from pathlib import Path

import pytest

from mailstack.inventory import load_for
from mailstack.lab import Lab
from tests.conftest import DEPLOYED
from tests.support import PROJECT, changed_hosts, changes, deploy, verify

INVENTORY = PROJECT / "inventories" / "lab-small.py"

pytestmark = [pytest.mark.lab, pytest.mark.second_lab]


@pytest.fixture(scope="module")
def small_lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    the_lab = Lab(load_for(INVENTORY))
    if (Path("/sys/class/net") / the_lab.settings.bridge).exists():
        pytest.skip(f"a lab is up on {the_lab.settings.bridge}: one lab at a time (this module runs after the"
                    " lab's teardown test; `mailstack lab down` stops a lab left running)")
    try:
        the_lab.up()
        the_lab.first_deploy = deploy(INVENTORY)
        os.environ[DEPLOYED] = str(INVENTORY)  # `mailstack verify` below finds it deployed
        yield the_lab
    finally:
        os.environ.pop(DEPLOYED, None)
        the_lab.down()


def test_the_first_deploy_changes_every_host(small_lab):
    assert changed_hosts(small_lab.first_deploy) == set(small_lab.config.hosts)


def test_a_second_deploy_changes_nothing(small_lab):
    assert changes(deploy(INVENTORY)) == {}


def test_the_testinfra_suites_pass_on_debian_13(small_lab):
    assert {small_lab.config.release_of(name) for name in small_lab.config.hosts} == {"trixie"}
    verify(INVENTORY)
