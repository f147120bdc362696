"""Facts about the storage of /var/vmail: software RAID arrays, ZFS pools and datasets, and
the disks under them."""

import re
import shlex

from pyinfra.api import FactBase


def sections(output) -> dict[str, list[str]]:
    """The lines of a fact's output split by the ``=== <name>`` line that starts each section."""
    found, current = {}, None
    for line in output:
        if line.startswith("=== "):
            current = found.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    return found


MEMBER = re.compile(r"^\s*(?:\d+|-)\s+\d+\s+\d+\s+(?:\d+|-)\s+(?:(?P<state>.+?)\s+)?(?P<device>/dev/\S+)$")
# States of an array that serves no data: too few members to start, or members lost while running.
NOT_RUNNING = ("inactive", "FAILED", "broken")


class MdArrays(FactBase[dict]):
    """
    Software RAID arrays from ``mdadm --detail``, by device.

    .. code:: python

        {
            "/dev/md127": {
                "name": "vmail", "level": 10, "state": "clean, degraded", "running": True, "degraded": True,
                "sync": None,  # or {"action": "rebuild", "percent": 42.0}; "resync" while it builds
                "members": {"/dev/vdb": "active sync set-A", "/dev/vdc": "faulty"},
            },
        }
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return (
            "for array in $(awk '/^md/ {print $1}' /proc/mdstat 2>/dev/null); do"
            ' echo "=== /dev/$array"; mdadm --detail "/dev/$array"; done'
        )

    def process(self, output) -> dict:
        arrays = {}
        for device, lines in sections(output).items():
            array = arrays[device] = {"members": {}, "sync": None}
            for line in lines:
                _read_detail_line(array, line)
        for array in arrays.values():
            array["running"] = not any(word in array.get("state", "") for word in NOT_RUNNING)
            array["degraded"] = "degraded" in array.get("state", "") or any(
                state.startswith(("faulty", "removed")) for state in array["members"].values()
            )
        return arrays


def _read_detail_line(array: dict, line: str) -> None:
    key, separator, value = (part.strip() for part in line.partition(" : "))
    if separator:
        if key == "Raid Level":
            array["level"] = int(value.removeprefix("raid"))
        elif key == "State":
            array["state"] = value
        elif key == "Name":
            array["name"] = value.split()[0].split(":")[-1]  # "store1:vmail  (local to host store1)"
        elif key.endswith("Status") and "%" in value:  # Resync, Rebuild, Reshape, Check Status
            array["sync"] = {"action": key.split()[0].lower(), "percent": float(value.split("%")[0])}
        return
    if match := MEMBER.match(line):
        array["members"][match["device"]] = match["state"] or "not running"  # an inactive array's members


class BlockDevices(FactBase[dict]):
    """
    What each of ``devices`` holds: the signatures ``wipefs`` finds on it (partition table,
    filesystem, RAID or ZFS member), the filesystem's UUID, what of it is mounted, what uses
    it (the kernel's holders, such as a running array), and its partitions with what each
    holds (a whole disk in a ZFS pool is partitioned). A missing device is ``None``.

    .. code:: python

        {
            "/dev/vdb": {"path": "/dev/vdb", "signatures": ["ext4"], "uuid": "0b9c...",
                         "mounted": ["/srv"], "holders": [], "partitions": {}},
            "/dev/vdc": {"path": "/dev/vdc", "signatures": ["gpt", "PMBR"], "uuid": None, "mounted": [],
                         "holders": [], "partitions": {"/dev/vdc1": {"signature": "zfs_member", "label": "tank"}}},
            "/dev/vdd": None,
        }
    """

    def command(self, devices) -> str:
        quoted = " ".join(shlex.quote(device) for device in devices)
        return (
            f"for device in {quoted}; do"
            ' echo "=== $device"; [ -b "$device" ] || continue;'
            ' echo "path $(readlink -f "$device")";'
            " wipefs --no-act --noheadings --output TYPE \"$device\" 2>/dev/null | sed 's/^/signature /';"
            ' echo "uuid $(blkid -s UUID -o value "$device")";'
            " lsblk -nr -o MOUNTPOINT \"$device\" | sed '/^$/d; s/^/mounted /';"
            " lsblk -nr -o TYPE,PATH,FSTYPE,LABEL \"$device\" | sed -n 's/^part /partition /p';"
            ' ls "/sys/class/block/$(basename "$(readlink -f "$device")")/holders" | sed "s/^/holder /";'
            " done"
        )

    def process(self, output) -> dict:
        return {device: _read_device(lines) for device, lines in sections(output).items()}


def _read_device(lines: list[str]) -> dict | None:
    if not lines:
        return None
    found = {"signatures": [], "uuid": None, "mounted": [], "holders": [], "partitions": {}}
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "path":
            found["path"] = value
        elif key == "uuid":
            found["uuid"] = value or None
        elif key in ("signature", "holder"):
            found[f"{key}s"].append(value)
        elif key == "mounted":
            found["mounted"].append(value)
        elif key == "partition":
            path, signature, label = (value.split(" ") + ["", ""])[:3]
            found["partitions"][path] = {"signature": signature or None, "label": label or None}
    return found


class MdConfig(FactBase[dict]):
    """
    The lines of /etc/mdadm/mdadm.conf about array ``array_name`` (its ARRAY line, MAILADDR), and
    the ARRAY line ``mdadm --detail --brief`` makes for it, if it runs (as ``device``).

    .. code:: python

        {"configured": ["MAILADDR postmaster@example.com", "ARRAY /dev/md/vmail metadata=1.2 ..."],
         "running": "ARRAY /dev/md/vmail metadata=1.2 UUID=... name=mx1:vmail"}
    """

    @staticmethod
    def default() -> dict:
        return {"configured": [], "running": None}

    def command(self, array_name, device) -> str:
        device = shlex.quote(device)
        return (
            f"grep -E '^(MAILADDR|ARRAY /dev/md/{array_name} )' /etc/mdadm/mdadm.conf 2>/dev/null"
            " | sed 's/^/configured /';"
            f" [ -b {device} ] && {array_line(array_name, device)} | sed 's/^/running /'; true"
        )

    def process(self, output) -> dict:
        found = {"configured": [], "running": None}
        for line in output:
            key, _, value = line.partition(" ")
            if key == "configured":
                found["configured"].append(value)
            else:
                found["running"] = value
        return found


def array_line(array_name: str, device: str) -> str:
    """Shell: the array's mdadm.conf line, naming it /dev/md/<name> whatever md device it runs as."""
    return f"mdadm --detail --brief {shlex.quote(device)} | sed 's#^ARRAY [^ ]*#ARRAY /dev/md/{array_name}#'"


class HasFiles(FactBase[bool]):
    """Whether folder ``path`` exists and holds anything (a mount there would hide it)."""

    @staticmethod
    def default() -> bool:
        return False

    def command(self, path) -> str:
        return f"find {shlex.quote(path)} -mindepth 1 -maxdepth 1 2>/dev/null | head -n 1"

    def process(self, output) -> bool:
        return any(line.strip() for line in output)


class ZfsPools(FactBase[dict]):
    """
    Imported ZFS pools from ``zpool status`` and ``zpool get``: health, the vdevs with each
    device's state and error counts, data errors, the last or current scan, and properties.
    Devices are named as the kernel names them (``/dev/vdb``); one that is gone by what it was.

    .. code:: python

        {
            "tank": {
                "state": "DEGRADED",
                "vdevs": [{"name": "mirror-0", "type": "mirror", "state": "DEGRADED", "devices": {
                    "/dev/vdb": {"state": "ONLINE", "read": 0, "write": 0, "checksum": 0, "note": ""},
                    "/dev/vdc": {"state": "OFFLINE", "read": 0, "write": 0, "checksum": 0, "note": ""},
                }}],
                "errors": "No known data errors",
                "scan": {"action": "resilver", "running": True, "percent": 42.0,
                         "text": "resilver in progress since ..."},  # None: never scanned
                "properties": {"ashift": "12", "health": "DEGRADED", ...},
            },
        }
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return (
            "for pool in $(zpool list -H -o name 2>/dev/null); do"
            ' echo "=== $pool"; zpool status -p -L "$pool";'
            ' zpool get -H -p -o property,value all "$pool" | sed "s/^/property\\t/"; done'
        )

    def process(self, output) -> dict:
        return {pool: _read_pool(lines) for pool, lines in sections(output).items()}


SCAN = re.compile(r"^(?P<action>scrub|resilver)(?P<running> in progress)?")
PERCENT = re.compile(r"(?P<percent>[\d.]+)% done")
# A vdev that holds devices, not a device: "mirror-0", "raidz2-1".
GROUP = re.compile(r"^(mirror|raidz\d?|draid\d?\S*|spare|replacing)-\d+$")


def _read_pool(lines: list[str]) -> dict:
    pool = {"state": None, "vdevs": [], "errors": None, "scan": None, "properties": {}}
    heading, in_config = None, False
    for line in lines:
        if line.startswith("property\t"):
            _, name, value = line.split("\t", 2)
            pool["properties"][name] = value
        elif match := re.match(r"^\s*(\w+): ?(.*)$", line):
            heading, value = match[1], match[2]
            in_config = heading == "config"
            if heading == "state":
                pool["state"] = value
            elif heading == "errors":
                pool["errors"] = value
            elif heading == "scan":
                pool["scan"] = value
        elif heading == "scan" and line.startswith("\t"):
            pool["scan"] += " " + line.strip()
        elif in_config and line.startswith("\t") and not line.strip().startswith("NAME "):
            _read_config_line(pool, line[1:])
    pool["scan"] = _read_scan(pool["scan"])
    return pool


def _read_config_line(pool: dict, line: str) -> None:
    """One line of ``zpool status``'s config: the pool (no indent), a vdev or a device."""
    depth = len(line) - len(line.lstrip(" "))
    name, *rest = line.split()
    if depth == 0:
        return  # the pool itself, or a group heading such as "logs"
    state, rest = (rest[0], rest[1:]) if rest else ("", [])
    counted = len(rest) >= 3 and all(count.isdigit() for count in rest[:3])
    counts, note = (rest[:3], rest[3:]) if counted else (["0", "0", "0"], rest)
    if GROUP.match(name):  # a nested one ("replacing-0" in a mirror) adds its devices to the vdev
        if depth == 2:
            pool["vdevs"].append({"name": name, "type": name.rsplit("-", 1)[0], "state": state, "devices": {}})
        return
    if depth == 2:  # a disk alone is a vdev too
        pool["vdevs"].append({"name": name, "type": "disk", "state": state, "devices": {}})
    if was := re.search(r"was (\S+)", " ".join(note)):  # a device that is gone, shown by its guid
        name = was[1]
    pool["vdevs"][-1]["devices"][name if name.startswith("/") else f"/dev/{name}"] = {
        "state": state, "read": int(counts[0]), "write": int(counts[1]), "checksum": int(counts[2]),
        "note": " ".join(note),
    }


def _read_scan(text: str | None) -> dict | None:
    if not text or not (match := SCAN.match(text)):
        return None
    percent = PERCENT.search(text)
    return {"action": match["action"], "running": bool(match["running"]),
            "percent": float(percent["percent"]) if percent else None, "text": text}


class ZfsDatasets(FactBase[dict]):
    """
    Properties of every ZFS filesystem, as ``zfs get -p`` prints them (sizes in bytes, no
    quota as 0), for the ``properties`` asked for.

    .. code:: python

        {"tank": {"mountpoint": "none", "compression": "lz4"},
         "tank/vmail": {"mountpoint": "/var/vmail", "mounted": "yes", "quota": "214748364800"}}
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, properties) -> str:
        return (
            "! command -v zfs >/dev/null || [ ! -e /dev/zfs ] ||"
            f" zfs get -H -p -t filesystem -o name,property,value {','.join(properties)}"
        )

    def process(self, output) -> dict:
        datasets = {}
        for line in output:
            name, prop, value = line.split("\t")
            datasets.setdefault(name, {})[prop] = value
        return datasets
