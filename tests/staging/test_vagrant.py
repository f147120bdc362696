"""Vagrant staging, booted for real: the small staging (one lb host, one mx host with four
disks) comes up with ``vagrant up`` from the box built here, takes the deploy, passes the
testinfra suites unchanged, takes a second deploy without a change, and goes again leaving
nothing in libvirt and no daemon behind. Runs after the lab is down (it needs the CPU)."""

import os
import shutil
import subprocess

import pytest

from mailstack.inventory import load_for
from mailstack.staging import FOLDER, Staging, libvirt
from tests.support import PROJECT, changed_hosts, changes, deploy, skip_unless_ci_has_time, verify

INVENTORY = PROJECT / "inventories" / "staging-small.py"

pytestmark = pytest.mark.staging


@pytest.fixture(scope="module")
def staging():
    if os.geteuid() != 0 or not shutil.which("vagrant") or not shutil.which("libvirtd"):
        pytest.skip("Vagrant staging needs root, vagrant and libvirt (.ci/install installs them)")
    skip_unless_ci_has_time(0.5, "the Vagrant staging")
    saved = dict(os.environ)
    the_staging = Staging(load_for(INVENTORY))
    # As `make staging` is run here: the box built here, and TCG (KVM does not work for guests here)
    os.environ.update({"MAILSTACK_BOX": the_staging.local_box, "MAILSTACK_LIBVIRT_DRIVER": "qemu"})
    the_staging.own_daemons = [daemon for daemon in libvirt.DAEMONS if not libvirt.pid(daemon)]
    try:
        the_staging.down()  # a staging left by an interrupted run
        the_staging.up()
        the_staging.first_deploy = deploy(INVENTORY)
        yield the_staging
    finally:
        the_staging.down()
        os.environ.clear()
        os.environ.update(saved)


def test_the_first_deploy_changes_every_vm(staging):
    assert changed_hosts(staging.first_deploy) == set(staging.config.hosts)


def test_a_second_deploy_changes_nothing(staging):
    assert changes(deploy(INVENTORY)) == {}


def test_the_testinfra_suites_pass_on_the_vms(staging):
    verify(INVENTORY)


def test_down_leaves_nothing_behind(staging):
    staging.down()
    libvirt.start()
    try:
        assert libvirt.leftovers("mailstack-") == []
    finally:
        libvirt.stop()
    leftover = [f"^{daemon}" for daemon in staging.own_daemons] + ["guest=mailstack-", str(FOLDER / "proxy")]
    for pattern in leftover:
        assert subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 1, pattern
