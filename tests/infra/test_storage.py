"""Storage of /var/vmail on hosts in the storage group: the array runs in sync at the
configured level, or the pool is ONLINE without errors; the filesystem or the datasets are
mounted as configured and recorded for boot; scrubs and snapshots are scheduled; failures
are mailed to the postmaster. On a Debian 13 mx pair the array is DRBD's disk, and Pacemaker,
not fstab, mounts DRBD's device on the host that holds the mailboxes.

A degraded array or pool fails ``test_array_is_healthy`` or ``test_pool_is_healthy`` with a
message naming the failed device.
"""

import pytest

from deploys.drbd import DEVICE, RESOURCE
from facts.devices import DeviceContents
from facts.mdadm import MdArrays, MdConfig
from facts.zfs import ZfsProperties, ZpoolStatus
from mailstack import storage_rules

GROUPS = ["storage"]
MIN_FREE = 0.10  # of the filesystem's size


@pytest.fixture
def layout(host, cluster):
    return cluster.hosts[host.backend.hostname].storage


@pytest.fixture
def raid(layout):
    if layout.mdraid is None:
        pytest.skip("this host's storage is not an mdadm array")
    return layout.mdraid


@pytest.fixture
def pool(layout):
    if layout.zfs is None:
        pytest.skip("this host's storage is not a ZFS pool")
    return layout.zfs


def fact(host, fact_class, **arguments):
    """A custom fact of ``facts/``, gathered by testinfra: the same command, the same parser."""
    found = fact_class()
    return found.process(host.check_output(found.command(**arguments)).splitlines())


def test_array_is_healthy(host, raid):
    problems = storage_rules.md_health(raid, fact(host, MdArrays))
    assert not problems, "; ".join(problems)
    assert f"[{'U' * len(raid.devices)}]" in host.file("/proc/mdstat").content_string


@pytest.fixture
def array(host, raid) -> str:
    """The running array's device (/dev/md127)."""
    return storage_rules.find_array(raid, fact(host, MdArrays))[0]


@pytest.fixture
def under_drbd(host, cluster, array) -> bool:
    """Whether the host's array is the disk of the pair's DRBD resource (checked so)."""
    if not cluster.mailboxes_on_drbd(host.backend.hostname):
        return False
    assert host.check_output(f"readlink -f $(drbdadm sh-ll-dev {RESOURCE})") == array
    return True


@pytest.mark.usefixtures("mail_runs_here")
def test_filesystem_is_mounted_as_configured(host, raid, array, under_drbd):
    mount = host.mount_point(raid.mount_point)
    assert mount.exists and mount.filesystem == raid.filesystem
    assert set(raid.mount_options) <= set(mount.options)
    assert host.check_output(f"readlink -f {mount.device}") == (DEVICE if under_drbd else array)


def test_fstab_and_mdadm_conf_record_the_array(host, raid, array, under_drbd, cluster):
    fstab = [line.split() for line in host.file("/etc/fstab").content_string.splitlines()]
    entries = [fields for fields in fstab if fields[1:2] == [raid.mount_point]]
    assert entries == ([] if under_drbd else [fstab_line(host, raid, array)])
    recorded = fact(host, MdConfig, array_name=raid.name, device=array)
    assert sorted(recorded["configured"]) == sorted([f"MAILADDR {cluster.postmaster}", recorded["running"]])
    assert host.service("mdmonitor").is_running


def fstab_line(host, raid, array: str) -> list[str]:
    uuid = fact(host, DeviceContents, devices=(array,))[array]["uuid"]
    return [f"UUID={uuid}", raid.mount_point, raid.filesystem, ",".join(raid.mount_options), "0", "2"]


def test_pool_is_healthy(host, pool):
    devices = storage_rules.zfs_devices(pool)
    disks = fact(host, DeviceContents, devices=tuple(devices))
    problems = storage_rules.zfs_health(pool, fact(host, ZpoolStatus), disks)
    assert not problems, "; ".join(problems)


def test_datasets_are_mounted_as_configured(host, pool):
    wanted = storage_rules.dataset_properties(pool)
    names = sorted({"mounted", *(name for properties in wanted.values() for name in properties)})
    problems = storage_rules.dataset_differences(pool, fact(host, ZfsProperties, properties=tuple(names)))
    assert not problems, "; ".join(problems)
    for dataset in pool.datasets:
        mount = host.mount_point(dataset.mount_point)
        assert mount.exists and (mount.filesystem, mount.device) == ("zfs", f"{pool.pool}/{dataset.name}")


def test_pool_is_imported_at_boot_scrubbed_and_snapshotted(host, pool):
    assert host.check_output(f"zpool get -H -o value cachefile,ashift {pool.pool}").split() == ["-", str(pool.ashift)]
    assert host.file("/etc/zfs/zpool.cache").exists
    for unit in ("zfs-load-module.service", "zfs-import-cache.service", "zfs-import.target", "zfs-mount.service",
                 "zfs.target", "cron"):
        assert host.service(unit).is_enabled, unit
    scrub = host.service(f"zfs-scrub-{pool.scrub}@{pool.pool}.timer")
    assert scrub.is_enabled and scrub.is_running
    assert host.package("zfs-auto-snapshot").is_installed and host.service("cron").is_running


def test_zfs_faults_are_mailed_to_the_postmaster(host, pool, cluster):
    settings = host.check_output('. /etc/zfs/zed.d/zed.rc && echo "$ZED_EMAIL_ADDR $ZED_EMAIL_PROG"')
    assert settings.split() == [cluster.postmaster, "/usr/sbin/sendmail"]
    assert host.service("zfs-zed").is_running


def test_free_space_above_threshold(host, layout):
    mount_points = [layout.mdraid.mount_point] if layout.mdraid else [d.mount_point for d in layout.zfs.datasets]
    for mount_point in mount_points:
        size, available = map(int, host.check_output(f"df --output=size,avail -B1 {mount_point} | tail -n 1").split())
        assert available >= MIN_FREE * size, f"{mount_point}: {available} of {size} bytes free"
