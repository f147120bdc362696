"""Storage of /var/vmail: what a deploy may do to disks, and whether the storage is healthy.

Both are plain functions of facts (``facts/storage.py``), so the deploy, the testinfra
checks and the unit tests read the same rules. The one rule above all: never destroy
data. A disk that holds anything is refused unless the configuration marks it for wiping;
an array that exists is left alone, and one that differs from the configuration is
reported, never rebuilt.
"""

from .config.model import MdRaid


def array_device(raid: MdRaid) -> str:
    """The name the array assembles under (``mdadm.conf`` and the initramfs keep it)."""
    return f"/dev/md/{raid.name}"


def find_array(raid: MdRaid, arrays: dict) -> tuple[str, dict] | None:
    """The running array of this name (``MdArrays`` fact), whatever md device it got."""
    return next(((device, array) for device, array in arrays.items() if array.get("name") == raid.name), None)


def md_refusals(raid: MdRaid, arrays: dict, disks: dict) -> list[str]:
    """Why the deploy must not touch the disks: each problem names the device and what it holds.

    ``arrays`` is the ``MdArrays`` fact, ``disks`` the ``BlockDevices`` fact of the members."""
    if found := find_array(raid, arrays):
        return _array_differences(raid, *found, disks)
    problems = []
    for device in raid.devices:
        disk = disks.get(device)
        if disk is None:
            problems.append(f"{device} does not exist")
            continue
        held = _contents(disk)
        if held and device not in raid.wipe:
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
    return [_SIGNATURES.get(signature, signature) for signature in disk["signatures"]]


def _uses(disk: dict) -> list[str]:
    return [f"mounted at {path}" for path in disk["mounted"]] + [f"used by {holder}" for holder in disk["holders"]]


_SIGNATURES = {
    "linux_raid_member": "a RAID member signature",
    "zfs_member": "a ZFS member signature",
    "gpt": "a GPT partition table",
    "PMBR": "a protective MBR",
    "dos": "a DOS partition table",
}


def filesystem_refusal(raid: MdRaid, device: str, disk: dict | None) -> str | None:
    """The array holds something other than the configured filesystem: never format it."""
    if disk and disk["signatures"] and disk["signatures"] != [raid.filesystem]:
        return f"{device} holds {', '.join(_contents(disk))}, not {raid.filesystem}; it is left as it is"
    return None


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
