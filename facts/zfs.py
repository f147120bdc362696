"""Facts about ZFS pools and datasets (named apart from pyinfra's own ``facts.zfs``)."""

import re
from typing import TypedDict

from pyinfra.api import FactBase

from facts.output import sections


class DeviceState(TypedDict):
    state: str
    read: int
    write: int
    checksum: int
    note: str


class Vdev(TypedDict):
    name: str  # mirror-0, or the device of a vdev that is one disk
    type: str  # mirror, raidz2, disk, ...
    state: str
    devices: dict[str, DeviceState]


class Scan(TypedDict):
    action: str  # scrub or resilver
    running: bool
    percent: float | None
    text: str


class Pool(TypedDict):
    state: str | None
    vdevs: list[Vdev]
    errors: str | None
    scan: Scan | None
    properties: dict[str, str]


class ZpoolStatus(FactBase[dict[str, Pool]]):
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
    def default() -> dict[str, Pool]:
        return {}

    def requires_command(self) -> str:
        return "zpool"

    def command(self) -> str:
        return (
            "for pool in $(zpool list -H -o name 2>/dev/null); do"
            ' echo "=== $pool"; zpool status -p -L "$pool";'
            ' zpool get -H -p -o property,value all "$pool" | sed "s/^/property\\t/"; done'
        )

    def process(self, output) -> dict[str, Pool]:
        return {pool: _read_pool(lines) for pool, lines in sections(output).items()}


SCAN = re.compile(r"^(?P<action>scrub|resilver)(?P<running> in progress)?")
PERCENT = re.compile(r"(?P<percent>[\d.]+)% done")
# A vdev that holds devices, not a device: "mirror-0", "raidz2-1".
GROUP = re.compile(r"^(mirror|raidz\d?|draid\d?\S*|spare|replacing)-\d+$")


def _read_pool(lines: list[str]) -> Pool:
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


def _read_config_line(pool: Pool, line: str) -> None:
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


def _read_scan(text: str | None) -> Scan | None:
    if not text or not (match := SCAN.match(text)):
        return None
    percent = PERCENT.search(text)
    return {"action": match["action"], "running": bool(match["running"]),
            "percent": float(percent["percent"]) if percent else None, "text": text}


class ZfsProperties(FactBase[dict[str, dict[str, str]]]):
    """
    Properties of every ZFS filesystem, as ``zfs get -p`` prints them (sizes in bytes, no
    quota as 0), for the ``properties`` asked for.

    .. code:: python

        {"tank": {"mountpoint": "none", "compression": "lz4"},
         "tank/vmail": {"mountpoint": "/var/vmail", "mounted": "yes", "quota": "214748364800"}}
    """

    @staticmethod
    def default() -> dict[str, dict[str, str]]:
        return {}

    def requires_command(self, properties) -> str:
        return "zfs"

    def command(self, properties) -> str:
        return f"[ ! -e /dev/zfs ] || zfs get -H -p -t filesystem -o name,property,value {','.join(properties)}"

    def process(self, output) -> dict[str, dict[str, str]]:
        datasets = {}
        for line in output:
            name, prop, value = line.split("\t")
            datasets.setdefault(name, {})[prop] = value
        return datasets
