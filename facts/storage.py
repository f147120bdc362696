"""Facts about the storage of /var/vmail: software RAID arrays."""

import re

from pyinfra.api import FactBase

MEMBER = re.compile(r"^\s*(?:\d+|-)\s+\d+\s+\d+\s+(?:\d+|-)\s+(?P<state>.+?)\s+(?P<device>/dev/\S+)$")


class MdArrays(FactBase[dict]):
    """
    Software RAID arrays from ``mdadm --detail``, by device.

    .. code:: python

        {
            "/dev/md127": {
                "name": "vmail", "level": 10, "state": "clean, degraded", "degraded": True,
                "sync": None,  # or {"action": "rebuild", "percent": 42.0}; "resync" while it builds
                "members": {"/dev/vdb": "active sync set-A", "/dev/vdc": "faulty"},
            },
        }
    """

    def command(self) -> str:
        return (
            "for array in $(awk '/^md/ {print $1}' /proc/mdstat 2>/dev/null); do"
            ' echo "=== /dev/$array"; mdadm --detail "/dev/$array"; done'
        )

    def process(self, output) -> dict:
        arrays, current = {}, None
        for line in output:
            if line.startswith("=== "):
                current = arrays.setdefault(line[4:].strip(), {"members": {}, "sync": None})
            elif current is not None:
                _read_detail_line(current, line)
        for array in arrays.values():
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
        array["members"][match["device"]] = match["state"]
