"""Custom facts parse what real hosts print: ``mdadm --detail`` recorded on the lab's store1
(RAID10 over four virtio disks) while resyncing, healthy, degraded and recovering, and a
RAID10 over loop devices that lost a whole mirror pair (failed)."""

from pathlib import Path

import pytest

from facts.storage import MdArrays

FIXTURES = Path(__file__).parent / "fixtures" / "mdadm"
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
