"""Storage of /var/vmail on hosts in the storage group: the array runs in sync at the
configured level, its filesystem is mounted as configured and recorded for boot.

A degraded array fails ``test_array_is_healthy`` with a message naming the failed device.
"""

import pytest

from facts.storage import BlockDevices, MdArrays, MdConfig
from mailstack import storage

GROUPS = ["storage"]
MIN_FREE = 0.10  # of the filesystem's size


@pytest.fixture
def raid(host, cluster):
    layout = cluster.hosts[host.backend.hostname].storage
    if layout.mdraid is None:
        pytest.skip("this host's storage is not an mdadm array")
    return layout.mdraid


def fact(host, fact_class, **arguments):
    """A custom fact of ``facts/``, gathered by testinfra: the same command, the same parser."""
    found = fact_class()
    return found.process(host.check_output(found.command(**arguments)).splitlines())


def test_array_is_healthy(host, raid):
    problems = storage.md_health(raid, fact(host, MdArrays))
    assert not problems, "; ".join(problems)
    assert f"[{'U' * len(raid.devices)}]" in host.file("/proc/mdstat").content_string


def test_filesystem_is_mounted_as_configured(host, raid):
    mount = host.mount_point(raid.mount_point)
    assert mount.exists and mount.filesystem == raid.filesystem
    assert set(raid.mount_options) <= set(mount.options)
    device = storage.find_array(raid, fact(host, MdArrays))[0]
    assert host.check_output(f"readlink -f {mount.device}") == device


def test_fstab_and_mdadm_conf_record_the_array(host, raid, cluster):
    device = storage.find_array(raid, fact(host, MdArrays))[0]
    uuid = fact(host, BlockDevices, devices=(device,))[device]["uuid"]
    fstab = [line.split() for line in host.file("/etc/fstab").content_string.splitlines()]
    entries = [fields for fields in fstab if fields[1:2] == [raid.mount_point]]
    assert entries == [[f"UUID={uuid}", raid.mount_point, raid.filesystem, ",".join(raid.mount_options), "0", "2"]]
    recorded = fact(host, MdConfig, array_name=raid.name, device=device)
    assert sorted(recorded["configured"]) == sorted([f"MAILADDR {cluster.postmaster}", recorded["running"]])
    assert host.service("mdmonitor").is_running


def test_free_space_above_threshold(host, raid):
    size, available = map(int, host.check_output(f"df --output=size,avail -B1 {raid.mount_point} | tail -n 1").split())
    assert available >= MIN_FREE * size, f"{raid.mount_point}: {available} of {size} bytes free"
