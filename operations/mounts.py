"""Operations on filesystems: /etc/fstab entries and mounts."""

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Mounts

from facts.devices import DeviceContents


@operation()
def fstab_entry(device: str, mount_point: str, filesystem: str, options: list[str]):
    """
    The one /etc/fstab line for ``mount_point``: the filesystem of ``device`` by UUID.

    + device: the block device holding the filesystem (it may be made earlier in the same deploy)
    + mount_point: where it is mounted
    + filesystem: its type (ext4, xfs)
    + options: its mount options

    **Example:**

    .. code:: python

        fstab_entry(name="Mount /var/vmail at boot", device="/dev/md/vmail", mount_point="/var/vmail",
                    filesystem="ext4", options=["defaults", "noatime"])
    """
    known = host.get_fact(DeviceContents, devices=(device,))[device] or {}
    fields = f"{mount_point} {filesystem} {','.join(options)} 0 2"
    fstab = host.get_fact(FileContents, path="/etc/fstab") or []
    entries = [line for line in fstab if line.split()[1:2] == [mount_point]]
    if known.get("uuid") and entries == [f"UUID={known['uuid']} {fields}"]:
        host.noop(f"/etc/fstab mounts {mount_point}")
        return
    # On the first run the filesystem is made in this deploy: its UUID is read when it exists.
    yield (
        f"uuid=$(blkid -s UUID -o value {shlex.quote(device)}) && [ -n \"$uuid\" ]"
        f" && awk -v mount_point={shlex.quote(mount_point)} '$2 != mount_point' /etc/fstab > /etc/fstab.new"
        f" && printf 'UUID=%s %s\\n' \"$uuid\" {shlex.quote(fields)} >> /etc/fstab.new && mv /etc/fstab.new /etc/fstab"
        " && systemctl daemon-reload"
    )


@operation()
def mounted(mount_point: str, options: list[str]):
    """
    ``mount_point`` mounted as /etc/fstab says, with ``options`` in effect.

    + mount_point: a mount point that /etc/fstab names
    + options: mount options that must be in effect (a remount applies changed ones)

    **Example:**

    .. code:: python

        mounted(name="Mount /var/vmail", mount_point="/var/vmail", options=["defaults", "noatime"])
    """
    live = host.get_fact(Mounts).get(mount_point)
    if live is None:
        yield f"mkdir -p {shlex.quote(mount_point)} && mount {shlex.quote(mount_point)}"
    elif not set(options) <= set(live["options"]):
        yield f"mount -o remount {shlex.quote(mount_point)}"
    else:
        host.noop(f"{mount_point} is mounted")
