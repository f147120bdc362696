"""Storage of /var/vmail: what a deploy may do to disks, and whether the storage is healthy.

Both are plain functions of facts (``facts/mdadm.py``, ``facts/zfs.py``, ``facts/devices.py``),
so the deploy, the testinfra checks and the unit tests read the same rules. The one rule
above all: never destroy data. A disk that holds anything is refused unless the
configuration marks it for wiping; an array or pool that exists is left alone, and one that
differs from the configuration is reported, never rebuilt. Every value in a command is
quoted as one argument, besides being checked against its grammar when the file is loaded.
"""

import shlex

from .config.model import MdRaid, Zfs


def array_device(raid: MdRaid) -> str:
    """The name the array assembles under (``mdadm.conf`` and the initramfs keep it)."""
    return f"/dev/md/{raid.name}"


def find_array(raid: MdRaid, arrays: dict) -> tuple[str, dict] | None:
    """The running array of this name (``MdArrays`` fact), whatever md device it got."""
    return next(((device, array) for device, array in arrays.items() if array.get("name") == raid.name), None)


def md_refusals(raid: MdRaid, arrays: dict, disks: dict) -> list[str]:
    """Why the deploy must not touch the disks: each problem names the device and what it holds.

    ``arrays`` is the ``MdArrays`` fact, ``disks`` the ``DeviceContents`` fact of the members."""
    if found := find_array(raid, arrays):
        return _array_differences(raid, *found, disks)
    return disk_refusals(raid.devices, raid.wipe, disks)


def disk_refusals(devices: list[str], wipe: list[str], disks: dict) -> list[str]:
    """The disks of a new array or pool that hold data (unless listed in ``wipe``), are in use
    or are missing."""
    problems = []
    for device in devices:
        disk = disks.get(device)
        if disk is None:
            problems.append(f"{device} does not exist")
            continue
        held = _contents(disk)
        if held and device not in wipe:
            problems.append(f"{device} holds {', '.join(held)}; list it in wipe to destroy that")
        elif disk["mounted"] or disk["holders"]:  # in use: not even wipe may take it
            problems.append(f"{device} is in use ({', '.join(_uses(disk))})")
    return problems


def _array_differences(raid: MdRaid, device: str, array: dict, disks: dict) -> list[str]:
    """An array of this name exists: it must be the configured one. A member that failed or
    was removed keeps it the same array (degraded, which the checks report)."""
    configured = {(disks.get(member) or {}).get("path", member) for member in raid.devices}
    members = set(array["members"])
    problems = []
    if array.get("level") != raid.level:
        problems.append(f"{device} ({raid.name}) is RAID{array.get('level')}, the configuration says RAID{raid.level}")
    if strangers := sorted(members - configured):
        problems.append(f"{device} ({raid.name}) has members the configuration does not list: {', '.join(strangers)}")
    return [f"{problem}; it is left as it is, not rebuilt" for problem in problems]


def _contents(disk: dict) -> list[str]:
    """What a disk holds, in words: its own signatures, then each partition's."""
    held = [_SIGNATURES.get(signature, signature) for signature in dict.fromkeys(disk["signatures"])]
    for path, partition in disk.get("partitions", {}).items():
        if partition["signature"]:
            label = f" ({partition['label']})" if partition["label"] else ""
            held.append(f"{path} with {_SIGNATURES.get(partition['signature'], partition['signature'])}{label}")
    return held


def wipe_commands(devices: list[str], wipe: list[str], disks: dict) -> list[str]:
    """Erase every signature on the disks marked for wiping, their partitions' first: the
    refusals let through only disks that are in ``wipe`` or hold nothing."""
    return [
        shlex.join(["wipefs", "--all", "--quiet", *(disks[device] or {}).get("partitions", {}), device])
        for device in devices if device in wipe
    ]


def mdadm_create(raid: MdRaid, device: str) -> str:
    """The command that makes the configured array as ``device``."""
    return shlex.join([
        "mdadm", "--create", device, f"--name={raid.name}", f"--level={raid.level}", "--metadata=1.2", "--run",
        f"--raid-devices={len(raid.devices)}", *raid.devices,
    ])


def mkfs(raid: MdRaid, device: str) -> str:
    return shlex.join([f"mkfs.{raid.filesystem}", "-q", device])


def _uses(disk: dict) -> list[str]:
    return [f"mounted at {path}" for path in disk["mounted"]] + [f"used by {holder}" for holder in disk["holders"]]


_SIGNATURES = {
    "linux_raid_member": "a RAID member signature",
    "zfs_member": "a ZFS member signature",
    "gpt": "a GPT partition table",
    "PMBR": "a protective MBR",
    "dos": "a DOS partition table",
}


def filesystem_refusals(raid: MdRaid, device: str, disk: dict | None) -> list[str]:
    """The array holds something other than the configured filesystem: never format it."""
    if disk and disk["signatures"] and disk["signatures"] != [raid.filesystem]:
        return [f"{device} holds {', '.join(_contents(disk))}, not {raid.filesystem}; it is left as it is"]
    return []


def md_health(raid: MdRaid, arrays: dict) -> list[str]:
    """What is wrong with the running array, naming each failed device: nothing when it runs
    at the configured level with every member in sync."""
    found = find_array(raid, arrays)
    if not found:
        return [f"no array named {raid.name} is running"]
    device, array = found
    if not array["running"]:
        return [f"{device} ({raid.name}) is not running ({array['state']}): members {', '.join(array['members'])}"]
    problems = []
    if array.get("level") != raid.level:
        problems.append(f"{device} is RAID{array.get('level')}, not RAID{raid.level}")
    if array["degraded"]:
        failed = [f"{member} ({state})" for member, state in array["members"].items() if not state.startswith("active")]
        missing = len(raid.devices) - len(array["members"])
        gone = [f"{missing} member(s) removed"] if missing > 0 else []
        problems.append(f"{device} is degraded: {', '.join(failed + gone)}")
    if array["sync"]:
        problems.append(f"{device} is in {array['sync']['action']}: {array['sync']['percent']}%")
    return problems


def zfs_devices(zfs: Zfs) -> list[str]:
    return [device for vdev in zfs.vdevs for device in vdev.devices]


def zpool_create(zfs: Zfs) -> str:
    """The command that makes the configured pool. Its root is mounted nowhere (only the
    datasets are) and takes no snapshots, and Debian's cron scrub stays off: a timer scrubs."""
    properties = dataset_properties(zfs)[zfs.pool]
    options = ["-o", f"ashift={zfs.ashift}"]
    options += [word for name, value in properties.items() for word in ("-O", f"{name}={value}")]
    layout = [word for vdev in zfs.vdevs for word in (vdev.type, *vdev.devices)]
    return shlex.join(["zpool", "create", *options, zfs.pool, *layout])


DEBIAN_SCRUB = "org.debian:periodic-scrub"
"""The root dataset's property that Debian's cron scrub of every pool obeys."""
AUTO_SNAPSHOT = "com.sun:auto-snapshot"
"""The property zfs-auto-snapshot obeys; the pool's root holds no mail and takes none."""


def zfs_refusals(zfs: Zfs, pools: dict, disks: dict) -> list[str]:
    """Why the deploy must not touch the disks: like ``md_refusals``, for a pool.

    ``pools`` is the ``ZpoolStatus`` fact, ``disks`` the ``DeviceContents`` fact of the devices."""
    if zfs.pool in pools:
        return [f"{problem}; it is left as it is, not rebuilt" for problem in pool_differences(zfs, pools, disks)]
    return disk_refusals(zfs_devices(zfs), zfs.wipe, disks)


def pool_differences(zfs: Zfs, pools: dict, disks: dict | None = None) -> list[str]:
    """How the imported pool's layout differs from the configured one: other vdevs, or a
    vdev with a disk the configuration does not list. A disk that is gone (ZFS names it by
    what it was) keeps the pool the same pool, degraded, which the checks report."""
    disks = disks or {}
    wanted = [(vdev.type, sorted((disks.get(d) or {}).get("path", d) for d in vdev.devices)) for vdev in zfs.vdevs]
    found = [(vdev["type"], sorted(vdev["devices"])) for vdev in pools[zfs.pool]["vdevs"]]
    present = [
        (vdev["type"], {name for name, device in vdev["devices"].items() if not device["note"].startswith("was ")})
        for vdev in pools[zfs.pool]["vdevs"]
    ]
    if len(wanted) == len(present) and all(
        kind == found_kind and devices <= set(listed) for (kind, listed), (found_kind, devices) in zip(wanted, present)
    ):
        return []
    return [f"pool {zfs.pool} is {_layout(found)}, the configuration says {_layout(wanted)}"]


def _layout(vdevs: list[tuple[str, list[str]]]) -> str:
    return " + ".join(f"{kind} ({' '.join(devices)})" for kind, devices in vdevs) or "empty"


def zfs_health(zfs: Zfs, pools: dict, disks: dict | None = None) -> list[str]:
    """What is wrong with the pool, naming each device that is not ONLINE or has errors:
    nothing when it is ONLINE, as configured, with no errors and no resilver running.
    ``disks`` (``DeviceContents``) tells which device a configured name such as
    /dev/disk/by-id/... is."""
    pool = pools.get(zfs.pool)
    if pool is None:
        return [f"no pool named {zfs.pool} is imported"]
    problems = pool_differences(zfs, pools, disks)
    devices = {name: device for vdev in pool["vdevs"] for name, device in vdev["devices"].items()}
    if pool["state"] != "ONLINE":
        failed = [f"{name} ({device['state']})" for name, device in devices.items() if device["state"] != "ONLINE"]
        problems.append(f"pool {zfs.pool} is {pool['state']}: {', '.join(failed) or 'no device named'}")
    for name, device in devices.items():
        if counts := [f"{device[kind]} {kind}" for kind in ("read", "write", "checksum") if device[kind]]:
            problems.append(f"{name} has errors: {', '.join(counts)}")
    if pool["errors"] != "No known data errors":
        problems.append(f"pool {zfs.pool}: {pool['errors']}")
    if (scan := pool["scan"]) and scan["action"] == "resilver" and scan["running"]:
        problems.append(f"pool {zfs.pool} is resilvering: {scan['percent']}%")
    if pool["properties"].get("ashift") != str(zfs.ashift):
        problems.append(f"pool {zfs.pool} has ashift {pool['properties'].get('ashift')}, not {zfs.ashift}")
    return problems


def dataset_properties(zfs: Zfs) -> dict[str, dict[str, str]]:
    """Each dataset's wanted properties as ``zfs get -p`` shows them (also what ``zfs set``
    takes): the configured ones on the pool's root, mount point and quota on each dataset."""
    wanted = {zfs.pool: {**zfs.properties, "mountpoint": "none", DEBIAN_SCRUB: "disable", AUTO_SNAPSHOT: "false"}}
    for dataset in zfs.datasets:
        wanted[f"{zfs.pool}/{dataset.name}"] = {
            "mountpoint": dataset.mount_point,
            "quota": str(dataset.quota or 0),
            AUTO_SNAPSHOT: str(dataset.snapshots).lower(),
        }
    return wanted


def dataset_differences(zfs: Zfs, datasets: dict) -> list[str]:
    """Datasets that are missing, differ in a property, or are not mounted (``ZfsProperties`` fact)."""
    problems = []
    for name, properties in dataset_properties(zfs).items():
        found = datasets.get(name)
        if found is None:
            problems.append(f"dataset {name} does not exist")
            continue
        differing = [key for key, value in properties.items() if found.get(key) != value]
        problems += [f"{name} has {key}={found.get(key)}, not {properties[key]}" for key in differing]
        if properties["mountpoint"] != "none" and found.get("mounted") != "yes":
            problems.append(f"{name} is not mounted at {properties['mountpoint']}")
    return problems
