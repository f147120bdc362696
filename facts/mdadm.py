"""Facts about software RAID arrays (mdadm)."""

import re
import shlex
from typing import TypedDict

from pyinfra.api import FactBase

from facts.output import sections

MEMBER = re.compile(r"^\s*(?:\d+|-)\s+\d+\s+\d+\s+(?:\d+|-)\s+(?:(?P<state>.+?)\s+)?(?P<device>/dev/\S+)$")
# States of an array that serves no data: too few members to start, or members lost while running.
NOT_RUNNING = ("inactive", "FAILED", "broken")


class Sync(TypedDict):
    action: str  # resync, rebuild, reshape, check
    percent: float


class MdArray(TypedDict, total=False):
    name: str
    level: int
    state: str  # absent when mdadm prints none
    running: bool
    degraded: bool
    sync: Sync | None
    members: dict[str, str]  # device: its state ("active sync set-A", "faulty", ...)


class MdLines(TypedDict):
    configured: list[str]
    running: str | None


class MdArrays(FactBase[dict[str, MdArray]]):
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
    def default() -> dict[str, MdArray]:
        return {}

    def requires_command(self) -> str:
        return "mdadm"

    def command(self) -> str:
        return (
            "for array in $(awk '/^md/ {print $1}' /proc/mdstat 2>/dev/null); do"
            ' echo "=== /dev/$array"; mdadm --detail "/dev/$array"; done'
        )

    def process(self, output) -> dict[str, MdArray]:
        arrays: dict[str, MdArray] = {}
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


def _read_detail_line(array: MdArray, line: str) -> None:
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


OURS = '$1 == "MAILADDR" || ($1 == "ARRAY" && $2 == array)'
"""The lines of mdadm.conf about one array: MAILADDR and its ARRAY line (awk; ``array`` is /dev/md/<name>)."""


class MdConfig(FactBase[MdLines]):
    """
    The lines of /etc/mdadm/mdadm.conf about array ``array_name`` (its ARRAY line, MAILADDR), and
    the ARRAY line ``mdadm --detail --brief`` makes for it, if it runs (as ``device``).

    .. code:: python

        {"configured": ["MAILADDR postmaster@example.com", "ARRAY /dev/md/vmail metadata=1.2 ..."],
         "running": "ARRAY /dev/md/vmail metadata=1.2 UUID=... name=mx1:vmail"}
    """

    @staticmethod
    def default() -> MdLines:
        return {"configured": [], "running": None}

    def command(self, array_name, device) -> str:
        device = shlex.quote(device)
        return (
            f"awk -v array={shlex.quote(f'/dev/md/{array_name}')} {shlex.quote(OURS)}"
            " /etc/mdadm/mdadm.conf 2>/dev/null"
            " | sed 's/^/configured /';"
            f" [ -b {shlex.quote(device)} ] && {array_line(array_name, device)} | sed 's/^/running /'; true"
        )

    def process(self, output) -> MdLines:
        found: MdLines = {"configured": [], "running": None}
        for line in output:
            key, _, value = line.partition(" ")
            if key == "configured":
                found["configured"].append(value)
            else:
                found["running"] = value
        return found


def array_line(array_name: str, device: str) -> str:
    """Shell: the array's mdadm.conf line, naming it /dev/md/<name> whatever md device it runs as."""
    rename = '$1 == "ARRAY" { $0 = "ARRAY " name substr($0, length("ARRAY " $2) + 1) } { print }'
    return (
        f"mdadm --detail --brief {shlex.quote(device)}"
        f" | awk -v name={shlex.quote(f'/dev/md/{array_name}')} {shlex.quote(rename)}"
    )
