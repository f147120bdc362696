"""Facts about block devices and folders: what a disk holds, whether a folder is empty."""

import shlex
from typing import TypedDict

from pyinfra.api import FactBase

from facts.output import sections


class Partition(TypedDict):
    signature: str | None
    label: str | None


class Device(TypedDict, total=False):
    path: str  # the device node a link resolves to
    signatures: list[str]
    uuid: str | None
    mounted: list[str]
    holders: list[str]
    partitions: dict[str, Partition]


class DeviceContents(FactBase[dict[str, Device | None]]):
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

    def process(self, output) -> dict[str, Device | None]:
        return {device: _read_device(lines) for device, lines in sections(output).items()}


def _read_device(lines: list[str]) -> Device | None:
    if not lines:
        return None
    found: Device = {"signatures": [], "uuid": None, "mounted": [], "holders": [], "partitions": {}}
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


class HasFiles(FactBase[bool]):
    """Whether folder ``path`` exists and holds anything (a mount there would hide it)."""

    @staticmethod
    def default() -> bool:
        return False

    def command(self, path) -> str:
        return f"find {shlex.quote(path)} -mindepth 1 -maxdepth 1 2>/dev/null | head -n 1"

    def process(self, output) -> bool:
        return any(line.strip() for line in output)
