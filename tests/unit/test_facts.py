"""Custom facts parse what real hosts print, recorded on the lab's store1:

- ``mdadm --detail`` of a RAID10 over four virtio disks while resyncing, healthy, degraded and
  recovering, and of a RAID10 over loop devices that lost a whole mirror pair (failed);
- ``zpool status``/``zpool get`` of a pool of two mirrors (healthy, a disk offline, resilvering)
  and of mirrors over files and device-mapper disks: checksum errors, a file gone, both
  disks failing I/O (suspended);
- what ``DeviceContents`` finds on a disk of an exported pool, a mounted ext4, an empty disk,
  a running array's member and a missing disk;
- ``cibadmin --query --scope configuration`` of the Debian 13 pair of ``staging-pair.yml``.
"""

import grp
import hashlib
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from facts.devices import DeviceContents
from facts.files import FileStates
from facts.mdadm import MdArrays
from facts.pacemaker import ClusterProperties
from facts.zfs import ZfsProperties, ZpoolStatus

FIXTURES = Path(__file__).parent / "fixtures" / "mdadm"
ZFS_FIXTURES = FIXTURES.parent / "zfs"
SETS = {"/dev/vdb": "set-A", "/dev/vdc": "set-B", "/dev/vdd": "set-A", "/dev/vde": "set-B"}


def md_arrays(fixture: str) -> dict:
    return MdArrays().process((FIXTURES / f"{fixture}.txt").read_text().splitlines())


@pytest.mark.parametrize(
    "fixture, state, degraded, sync, vdc",
    [
        ("resyncing", "clean, resyncing", False, {"action": "resync", "percent": 0.0}, "active sync set-B"),
        ("healthy", "clean", False, None, "active sync set-B"),
        ("degraded", "clean, degraded", True, None, "faulty"),
        ("recovering", "clean, degraded, recovering", True, {"action": "rebuild", "percent": 1.0}, "spare rebuilding"),
    ],
)
def test_md_arrays(fixture, state, degraded, sync, vdc):
    (array,) = md_arrays(fixture).values()
    assert (array["name"], array["level"], array["state"]) == ("vmail", 10, state)
    assert (array["degraded"], array["sync"]) == (degraded, sync)
    assert array["members"]["/dev/vdc"] == vdc
    for device in ("/dev/vdb", "/dev/vdd", "/dev/vde"):
        assert array["members"][device] == f"active sync {SETS[device]}"


def test_md_arrays_failed():
    """Two members of one mirror pair gone: mdadm assembles the rest but cannot start it."""
    (array,) = md_arrays("failed").values()
    assert (array["name"], array["level"], array["state"], array["running"]) == ("broken", 10, "inactive", False)
    assert array["members"] == {"/dev/loop12": "not running", "/dev/loop13": "not running"}


def test_no_arrays():
    assert MdArrays().process([]) == {}


def zfs_pools(fixture: str) -> dict:
    return ZpoolStatus().process((ZFS_FIXTURES / f"{fixture}.txt").read_text().splitlines())


def devices(pool: dict) -> dict[str, str]:
    return {name: device["state"] for vdev in pool["vdevs"] for name, device in vdev["devices"].items()}


@pytest.mark.parametrize(
    "fixture, state, vdc, scan",
    [
        ("healthy", "ONLINE", "ONLINE", ("scrub", False, None)),
        ("degraded", "DEGRADED", "OFFLINE", ("scrub", False, None)),
        ("resilvering", "ONLINE", "ONLINE", ("resilver", True, 71.37)),
    ],
)
def test_zfs_pools_of_two_mirrors(fixture, state, vdc, scan):
    pool = zfs_pools(fixture)["tank"]
    assert (pool["state"], pool["errors"], pool["properties"]["ashift"]) == (state, "No known data errors", "12")
    assert [(vdev["name"], vdev["type"], sorted(vdev["devices"])) for vdev in pool["vdevs"]] == [
        ("mirror-0", "mirror", ["/dev/vdb", "/dev/vdc"]),
        ("mirror-1", "mirror", ["/dev/vdd", "/dev/vde"]),
    ]
    assert devices(pool) == {"/dev/vdb": "ONLINE", "/dev/vdc": vdc, "/dev/vdd": "ONLINE", "/dev/vde": "ONLINE"}
    assert (pool["scan"]["action"], pool["scan"]["running"], pool["scan"]["percent"]) == scan


def test_zfs_pool_with_checksum_errors_names_the_device():
    pool = zfs_pools("checksum-errors")["scratch"]
    assert pool["state"] == "ONLINE"
    assert pool["vdevs"][0]["devices"]["/root/b"] == {
        "state": "ONLINE",
        "read": 0,
        "write": 0,
        "checksum": 186,
        "note": "",
    }


def test_zfs_pool_with_a_device_gone_names_what_it_was():
    pool = zfs_pools("missing")["scratch"]
    assert (pool["state"], devices(pool)) == ("DEGRADED", {"/root/a": "ONLINE", "/root/b": "UNAVAIL"})


def test_zfs_pool_that_failed():
    pool = zfs_pools("failed")["broken"]
    assert (pool["state"], pool["vdevs"][0]["state"]) == ("SUSPENDED", "UNAVAIL")
    assert devices(pool) == {"/dev/dm-0": "FAULTED", "/dev/dm-1": "FAULTED"}
    assert pool["vdevs"][0]["devices"]["/dev/dm-0"]["read"] == 3
    assert pool["errors"] == "1 data errors, use '-v' for a list"
    assert pool["scan"] is None


def test_no_pools():
    assert ZpoolStatus().process([]) == {}


def test_zfs_datasets_are_exact():
    found = ZfsProperties().process(["tank\tmountpoint\tnone", "tank/vmail\tquota\t104857600"])
    assert found == {"tank": {"mountpoint": "none"}, "tank/vmail": {"quota": "104857600"}}


def test_block_devices():
    found = DeviceContents().process((FIXTURES.parent / "disks" / "mixed.txt").read_text().splitlines())
    assert found["/dev/vdb"]["signatures"] == ["gpt", "gpt", "PMBR"]
    assert found["/dev/vdb"]["partitions"] == {
        "/dev/vdb1": {"signature": "zfs_member", "label": "tank"},
        "/dev/vdb9": {"signature": None, "label": None},
    }
    assert (found["/dev/vdf"]["signatures"], found["/dev/vdf"]["mounted"]) == (["ext4"], ["/mnt/precious"])
    assert found["/dev/vdf"]["uuid"] == "8b7d4485-c05d-40cc-9f7b-ab709ff0235b"
    assert found["/dev/vdg"] == {
        "path": "/dev/vdg",
        "signatures": [],
        "uuid": None,
        "mounted": [],
        "holders": [],
        "partitions": {},
    }
    assert (found["/dev/loop10"]["signatures"], found["/dev/loop10"]["holders"]) == (["linux_raid_member"], ["md127"])
    assert found["/dev/vdz"] is None


def test_cluster_properties_are_those_of_the_cluster_and_its_resource_defaults_only():
    """The resources' own settings (``promotable``, a Filesystem's ``device``) are not the cluster's."""
    found = ClusterProperties().process((FIXTURES.parent / "pacemaker" / "configuration.xml").read_text().splitlines())
    assert found == {
        "crm_config": {
            "have-watchdog": "true", "dc-version": "3.0.0-3.0.0", "cluster-infrastructure": "corosync",
            "cluster-name": "staging-pair", "stonith-enabled": "true", "no-quorum-policy": "stop",
            "stonith-watchdog-timeout": "20s",
        },
        "rsc_defaults": {"resource-stickiness": "100"},
    }


def test_no_cluster_has_no_properties():
    assert ClusterProperties().process([]) == {}


def test_file_states_give_each_regular_file_and_nothing_else(tmp_path):
    """The fact's own command, run by a real shell on real files: a link to a file and a
    missing file are absent, so a deploy writes them; the mode is pyinfra's (0o640 is 640)."""
    secret, spaced = tmp_path / "secret.conf", tmp_path / "with space.conf"
    secret.write_text("password\n")
    secret.chmod(0o640)
    spaced.write_text("")
    spaced.chmod(0o600)
    (tmp_path / "link.conf").symlink_to(secret)
    paths = tuple(str(tmp_path / name) for name in ("secret.conf", "with space.conf", "link.conf", "missing.conf"))
    fact = FileStates()
    printed = subprocess.run(["sh", "-c", fact.command(paths)], capture_output=True, text=True, check=True).stdout
    owner = (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    assert fact.process(printed.splitlines()) == {
        str(secret): (*owner, 640, hashlib.sha1(b"password\n").hexdigest()),
        str(spaced): (*owner, 600, hashlib.sha1(b"").hexdigest()),
    }
