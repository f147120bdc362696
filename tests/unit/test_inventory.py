"""Inventories: pyinfra sees exactly the configured hosts, and Vagrant the staging ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyinfra.connectors.sshuserclient.client import SSHClient

from mailstack.config.model import GROUPS, LAB_GROUPS
from mailstack.inventory import host_data, load_for
from mailstack.storage_rules import zfs_devices

PROJECT = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).with_name("pyinfra")


def test_pyinfra_reads_hosts_and_groups_from_the_configuration(example_inventory):
    config = load_for(example_inventory)
    result = subprocess.run(
        [PYINFRA, str(example_inventory), "debug-inventory", "--json"],
        capture_output=True, text=True, check=True, cwd=PROJECT,
    )
    hosts = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(hosts) == set(config.hosts)
    for name, host in config.hosts.items():
        assert set(hosts[name]["groups"]) == {*host.groups, example_inventory.stem}
        assert hosts[name]["data"]["ssh_hostname"] == str(host.address)
        assert hosts[name]["data"].get("vrrp_priority") == host.vrrp_priority


def test_pyinfra_keeps_each_connection_alive_and_still_reads_the_users_ssh_config(tmp_path, monkeypatch):
    """A command on a host that was reset (a fenced mx host) fails instead of waiting forever."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host 10.77.0.21\n  User admin\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    data = host_data(load_for(PROJECT / "inventories" / "lab.py"), "mx1")
    _, settings, *_, keep_alive, _ = SSHClient().parse_config(data["ssh_hostname"], {},
                                                              ssh_config_file=data["ssh_config_file"])
    assert (keep_alive, settings.get("username")) == (15, "admin")


def test_vagrantfile_is_valid():
    subprocess.run(["vagrant", "validate"], cwd=PROJECT, check=True, capture_output=True)


def vagrant_machines(source: Path, **environment: str) -> dict:
    """The machines the Vagrantfile defines for the configuration at ``source``."""
    unset = {name: value for name, value in os.environ.items() if name != "MAILSTACK_BOX"}
    result = subprocess.run(
        ["ruby", Path(__file__).parent / "vagrant" / "machines.rb", PROJECT / "Vagrantfile"],
        capture_output=True, text=True, check=True, env={**unset, "MAILSTACK_STAGING": str(source), **environment},
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("staging", ["staging", "staging-small", "staging-pair"])
def test_vagrant_machines_are_the_staging_inventory(staging):
    """The Vagrantfile makes the machines of the configuration MAILSTACK_STAGING names."""
    config = load_for(PROJECT / "inventories" / f"{staging}.py")
    machines = vagrant_machines(config.source)
    assert {name: machine["ip"] for name, machine in machines.items()} == {
        name: str(host.address) for name, host in config.hosts.items()
    }
    for name, machine in machines.items():
        storage = config.hosts[name].storage
        disks = len(storage.mdraid.devices if storage.mdraid else zfs_devices(storage.zfs)) if storage else 0
        assert machine["libvirt"]["disks"] == machine["virtualbox"]["disks"] == disks


def test_the_mx_vms_have_a_watchdog_for_sbd():
    """An mx pair on DRBD fences through SBD, which feeds a hardware watchdog (docs/ha.md)."""
    machines = vagrant_machines(PROJECT / "inventories/staging-pair.yml")
    assert {name: machine["libvirt"]["watchdog"] for name, machine in machines.items()} == {
        "lb1": None, "mx1": "i6300esb", "mx2": "i6300esb"}


def test_each_vm_boots_the_box_of_its_release_unless_one_is_named(tmp_path):
    """Debian's public box of the host's release (the cluster's unless the host has its own);
    MAILSTACK_BOX (the box built here) serves every VM."""
    staging = yaml.safe_load((PROJECT / "inventories" / "staging-small.yml").read_text())
    staging["cluster"]["release"] = "trixie"
    staging["hosts"]["lb1"]["release"] = "bookworm"
    source = tmp_path / "staging.yml"
    source.write_text(yaml.safe_dump(staging))
    assert {name: machine["box"] for name, machine in vagrant_machines(source).items()} == {
        "lb1": "debian/bookworm64", "mx1": "debian/trixie64"}
    named = vagrant_machines(source, MAILSTACK_BOX="mailstack/trixie64")
    assert {machine["box"] for machine in named.values()} == {"mailstack/trixie64"}


def test_a_vm_of_any_group_gets_memory(tmp_path):
    """Every group a staging host may be in (the lab's own services aside) sizes its VM."""
    staging = yaml.safe_load((PROJECT / "inventories" / "staging-small.yml").read_text())
    staging["hosts"]["lb1"]["groups"] = sorted(set(GROUPS) - LAB_GROUPS)
    source = tmp_path / "staging.yml"
    source.write_text(yaml.safe_dump(staging))
    assert vagrant_machines(source)["lb1"]["libvirt"]["memory"] == 2048
