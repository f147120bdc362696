"""The storage rules: which disks a deploy may touch, and what the health checks report."""

from pathlib import Path

from facts.mdadm import MdArrays
from facts.zfs import ZpoolStatus
from mailstack import storage_rules
from mailstack.config.model import MdRaid, Vdev, Zfs

FIXTURES = Path(__file__).parent / "fixtures" / "mdadm"
RAID = MdRaid(devices=["/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde"])
ZFS = Zfs(
    vdevs=[{"devices": ["/dev/vdb", "/dev/vdc"]}, {"devices": ["/dev/vdd", "/dev/vde"]}],
    datasets=[{"name": "vmail", "mount_point": "/var/vmail", "quota": "100M"}],
)


def empty(path: str) -> dict:
    return {"path": path, "signatures": [], "uuid": None, "mounted": [], "holders": [], "partitions": {}}


def disks(**changes) -> dict:
    found = {device: empty(device) for device in RAID.devices}
    for name, change in changes.items():
        found[f"/dev/{name}"] = change if change is None else {**found[f"/dev/{name}"], **change}
    return found


def arrays(fixture: str) -> dict:
    return MdArrays().process((FIXTURES / f"{fixture}.txt").read_text().splitlines())


def test_empty_disks_may_become_the_array():
    assert storage_rules.md_refusals(RAID, {}, disks()) == []


def test_a_disk_with_data_is_refused_naming_it_and_what_it_holds():
    holding = disks(vdc={"signatures": ["ext4"]}, vde={"signatures": ["gpt", "PMBR"]})
    problems = storage_rules.md_refusals(RAID, {}, holding)
    assert problems == [
        "/dev/vdc holds ext4; list it in wipe to destroy that",
        "/dev/vde holds a GPT partition table, a protective MBR; list it in wipe to destroy that",
    ]


def test_wipe_allows_data_but_never_a_disk_in_use():
    raid = RAID.model_copy(update={"wipe": ["/dev/vdb", "/dev/vdc"]})
    found = disks(vdb={"signatures": ["ext4"]}, vdc={"signatures": ["ext4"], "mounted": ["/srv"]})
    assert storage_rules.md_refusals(raid, {}, found) == ["/dev/vdc is in use (mounted at /srv)"]


def test_a_missing_disk_is_refused():
    assert storage_rules.md_refusals(RAID, {}, disks(vdd=None)) == ["/dev/vdd does not exist"]


def test_the_running_array_is_left_alone_even_degraded():
    """Its members carry RAID signatures and are held by the array: that is not a refusal."""
    member = {"signatures": ["linux_raid_member"], "holders": ["md127"]}
    found = disks(vdb=member, vdc=member, vdd=member, vde=member)
    assert storage_rules.md_refusals(RAID, arrays("healthy"), found) == []
    assert storage_rules.md_refusals(RAID, arrays("degraded"), found) == []


def test_an_array_that_differs_is_reported_not_rebuilt():
    raid = RAID.model_copy(update={"level": 1, "devices": ["/dev/vdb", "/dev/vdc"]})
    assert storage_rules.md_refusals(raid, arrays("healthy"), disks()) == [
        "/dev/md127 (vmail) is RAID10, the configuration says RAID1; it is left as it is, not rebuilt",
        "/dev/md127 (vmail) has members the configuration does not list: /dev/vdd, /dev/vde;"
        " it is left as it is, not rebuilt",
    ]


def test_members_by_another_name_are_compared_by_their_device():
    raid = RAID.model_copy(update={"devices": [f"/dev/disk/by-id/virtio-{n}" for n in "bcde"]})
    found = {f"/dev/disk/by-id/virtio-{n}": empty(f"/dev/vd{n}") for n in "bcde"}
    assert storage_rules.md_refusals(raid, arrays("healthy"), found) == []


def test_a_foreign_filesystem_on_the_array_is_never_formatted():
    assert storage_rules.filesystem_refusals(RAID, "/dev/md127", {**empty("/dev/md127"), "signatures": ["xfs"]}) == [
        "/dev/md127 holds xfs, not ext4; it is left as it is"
    ]
    assert storage_rules.filesystem_refusals(RAID, "/dev/md127", {**empty("/dev/md127"), "signatures": ["ext4"]}) == []


def test_health_names_the_failed_device():
    assert storage_rules.md_health(RAID, arrays("healthy")) == []
    assert storage_rules.md_health(RAID, arrays("degraded")) == [
        "/dev/md127 is degraded: /dev/vdc (faulty)",
    ]
    assert storage_rules.md_health(RAID, arrays("recovering")) == [
        "/dev/md127 is degraded: /dev/vdc (spare rebuilding)",
        "/dev/md127 is in rebuild: 1.0%",
    ]
    assert storage_rules.md_health(RAID, {}) == ["no array named vmail is running"]


def test_health_of_an_array_that_cannot_run_names_what_is_left():
    raid = RAID.model_copy(update={"name": "broken"})
    assert storage_rules.md_health(raid, arrays("failed")) == [
        "/dev/md126 (broken) is not running (inactive): members /dev/loop12, /dev/loop13"
    ]


def zfs(**changes) -> Zfs:
    return Zfs.model_validate({**ZFS.model_dump(), **changes})


def pools(fixture: str) -> dict:
    return ZpoolStatus().process((FIXTURES.parent / "zfs" / f"{fixture}.txt").read_text().splitlines())


POOL_MEMBER = {
    "signatures": ["gpt", "gpt", "PMBR"],
    "partitions": {
        "/dev/vdc1": {"signature": "zfs_member", "label": "tank"},
        "/dev/vdc9": {"signature": None, "label": None},
    },
}


def test_empty_disks_may_become_the_pool():
    assert storage_rules.zfs_refusals(ZFS, {}, disks()) == []


def test_a_disk_of_another_pool_is_refused_naming_the_pool():
    assert storage_rules.zfs_refusals(ZFS, {}, disks(vdc=POOL_MEMBER)) == [
        "/dev/vdc holds a GPT partition table, a protective MBR, /dev/vdc1 with a ZFS member signature (tank);"
        " list it in wipe to destroy that"
    ]


def test_wiping_a_disk_erases_its_partitions_first():
    wiped = zfs(wipe=["/dev/vdc"])
    found = disks(vdc=POOL_MEMBER)
    assert storage_rules.zfs_refusals(wiped, {}, found) == []
    assert storage_rules.wipe_commands(storage_rules.zfs_devices(wiped), wiped.wipe, found) == [
        "wipefs --all --quiet /dev/vdc1 /dev/vdc9 /dev/vdc"
    ]


def test_the_imported_pool_is_left_alone_even_degraded():
    member = {**POOL_MEMBER, "partitions": {}}
    found = disks(vdb=member, vdc=member, vdd=member, vde=member)
    assert storage_rules.zfs_refusals(ZFS, pools("healthy"), found) == []
    assert storage_rules.zfs_refusals(ZFS, pools("degraded"), found) == []


def test_a_pool_that_differs_is_reported_not_rebuilt():
    raidz = zfs(vdevs=[{"type": "raidz", "devices": ["/dev/vdb", "/dev/vdc", "/dev/vdd"]}])
    assert storage_rules.zfs_refusals(raidz, pools("healthy"), disks()) == [
        "pool tank is mirror (/dev/vdb /dev/vdc) + mirror (/dev/vdd /dev/vde), the configuration says"
        " raidz (/dev/vdb /dev/vdc /dev/vdd); it is left as it is, not rebuilt"
    ]


def test_a_pool_that_lost_a_disk_is_the_same_pool():
    """ZFS names a vanished disk by what it was: its partition, not the configured disk."""
    scratch = Zfs.model_construct(pool="scratch", vdevs=[Vdev.model_construct(type="mirror", devices=["/root/a"])])
    assert storage_rules.zfs_refusals(scratch, pools("missing"), {}) == []


def test_the_pool_is_made_as_configured():
    assert storage_rules.zpool_create(ZFS) == (
        "zpool create -o ashift=12 -O compression=lz4 -O atime=off -O mountpoint=none"
        " -O org.debian:periodic-scrub=disable -O com.sun:auto-snapshot=false"
        " tank mirror /dev/vdb /dev/vdc mirror /dev/vdd /dev/vde"
    )


def test_zfs_health_names_each_device_that_is_not_online():
    assert storage_rules.zfs_health(ZFS, pools("healthy")) == []
    assert storage_rules.zfs_health(ZFS, pools("degraded")) == ["pool tank is DEGRADED: /dev/vdc (OFFLINE)"]
    assert storage_rules.zfs_health(ZFS, pools("resilvering")) == ["pool tank is resilvering: 71.37%"]
    assert storage_rules.zfs_health(ZFS, {}) == ["no pool named tank is imported"]


def test_zfs_health_reports_errors_and_failed_pools():
    # Pools over files: their devices are not block devices, which the configuration refuses.
    scratch = Zfs.model_construct(
        pool="scratch", vdevs=[Vdev.model_construct(type="mirror", devices=["/root/a", "/root/b"])]
    )
    assert storage_rules.zfs_health(scratch, pools("checksum-errors")) == ["/root/b has errors: 186 checksum"]
    assert storage_rules.zfs_health(scratch, pools("missing")) == ["pool scratch is DEGRADED: /root/b (UNAVAIL)"]
    broken = zfs(pool="broken", vdevs=[{"devices": ["/dev/dm-0", "/dev/dm-1"]}])
    assert storage_rules.zfs_health(broken, pools("failed")) == [
        "pool broken is SUSPENDED: /dev/dm-0 (FAULTED), /dev/dm-1 (FAULTED)",
        "/dev/dm-0 has errors: 3 read",
        "/dev/dm-1 has errors: 3 read",
        "pool broken: 1 data errors, use '-v' for a list",
    ]


def test_datasets_are_compared_exactly():
    wanted = storage_rules.dataset_properties(ZFS)
    assert wanted["tank/vmail"] == {"mountpoint": "/var/vmail", "quota": "104857600", "com.sun:auto-snapshot": "true"}
    found = {name: {**properties, "mounted": "yes"} for name, properties in wanted.items()}
    assert storage_rules.dataset_differences(ZFS, found) == []
    found["tank/vmail"].update(quota="0", mounted="no")
    assert storage_rules.dataset_differences(ZFS, found) == [
        "tank/vmail has quota=0, not 104857600",
        "tank/vmail is not mounted at /var/vmail",
    ]
    missing = ["dataset tank does not exist", "dataset tank/vmail does not exist"]
    assert storage_rules.dataset_differences(ZFS, {}) == missing
