"""The storage rules: which disks a deploy may touch, and what the health checks report."""

from pathlib import Path

from facts.storage import MdArrays
from mailstack import storage
from mailstack.config.model import MdRaid

FIXTURES = Path(__file__).parent / "fixtures" / "mdadm"
RAID = MdRaid(devices=["/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde"])


def empty(path: str) -> dict:
    return {"path": path, "signatures": [], "uuid": None, "mounted": [], "holders": []}


def disks(**changes) -> dict:
    found = {device: empty(device) for device in RAID.devices}
    for name, change in changes.items():
        found[f"/dev/{name}"] = change if change is None else {**found[f"/dev/{name}"], **change}
    return found


def arrays(fixture: str) -> dict:
    return MdArrays().process((FIXTURES / f"{fixture}.txt").read_text().splitlines())


def test_empty_disks_may_become_the_array():
    assert storage.md_refusals(RAID, {}, disks()) == []


def test_a_disk_with_data_is_refused_naming_it_and_what_it_holds():
    problems = storage.md_refusals(RAID, {}, disks(vdc={"signatures": ["ext4"]}, vde={"signatures": ["gpt", "PMBR"]}))
    assert problems == [
        "/dev/vdc holds ext4; list it in wipe to destroy that",
        "/dev/vde holds a GPT partition table, a protective MBR; list it in wipe to destroy that",
    ]


def test_wipe_allows_data_but_never_a_disk_in_use():
    raid = RAID.model_copy(update={"wipe": ["/dev/vdb", "/dev/vdc"]})
    found = disks(vdb={"signatures": ["ext4"]}, vdc={"signatures": ["ext4"], "mounted": ["/srv"]})
    assert storage.md_refusals(raid, {}, found) == ["/dev/vdc is in use (mounted at /srv)"]


def test_a_missing_disk_is_refused():
    assert storage.md_refusals(RAID, {}, disks(vdd=None)) == ["/dev/vdd does not exist"]


def test_the_running_array_is_left_alone_even_degraded():
    """Its members carry RAID signatures and are held by the array: that is not a refusal."""
    member = {"signatures": ["linux_raid_member"], "holders": ["md127"]}
    found = disks(vdb=member, vdc=member, vdd=member, vde=member)
    assert storage.md_refusals(RAID, arrays("healthy"), found) == []
    assert storage.md_refusals(RAID, arrays("degraded"), found) == []


def test_an_array_that_differs_is_reported_not_rebuilt():
    raid = RAID.model_copy(update={"level": 1, "devices": ["/dev/vdb", "/dev/vdc"]})
    assert storage.md_refusals(raid, arrays("healthy"), disks()) == [
        "/dev/md127 (vmail) is RAID10, the configuration says RAID1; it is left as it is, not rebuilt",
        "/dev/md127 (vmail) has members the configuration does not list: /dev/vdd, /dev/vde;"
        " it is left as it is, not rebuilt",
    ]


def test_members_by_another_name_are_compared_by_their_device():
    raid = RAID.model_copy(update={"devices": [f"/dev/disk/by-id/virtio-{n}" for n in "bcde"]})
    found = {f"/dev/disk/by-id/virtio-{n}": empty(f"/dev/vd{n}") for n in "bcde"}
    assert storage.md_refusals(raid, arrays("healthy"), found) == []


def test_a_foreign_filesystem_on_the_array_is_never_formatted():
    assert storage.filesystem_refusal(RAID, "/dev/md127", {**empty("/dev/md127"), "signatures": ["xfs"]}) == (
        "/dev/md127 holds xfs, not ext4; it is left as it is"
    )
    assert storage.filesystem_refusal(RAID, "/dev/md127", {**empty("/dev/md127"), "signatures": ["ext4"]}) is None


def test_health_names_the_failed_device():
    assert storage.md_health(RAID, arrays("healthy")) == []
    assert storage.md_health(RAID, arrays("degraded")) == [
        "/dev/md127 is degraded: /dev/vdc (faulty)",
    ]
    assert storage.md_health(RAID, arrays("recovering")) == [
        "/dev/md127 is degraded: /dev/vdc (spare rebuilding)",
        "/dev/md127 is in rebuild: 1.0%",
    ]
    assert storage.md_health(RAID, {}) == ["no array named vmail is running"]


def test_health_of_an_array_that_cannot_run_names_what_is_left():
    raid = RAID.model_copy(update={"name": "broken"})
    assert storage.md_health(raid, arrays("failed")) == [
        "/dev/md126 (broken) is not running (inactive): members /dev/loop12, /dev/loop13"
    ]
