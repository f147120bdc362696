"""Storage for /var/vmail on hosts in the storage group: an mdadm array (``mdraid``).

Every refusal (``mailstack.storage``) is decided while pyinfra prepares, from facts, so a
disk that holds data stops the whole deploy before any host is touched.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Mounts
from pyinfra.operations import apt, server, systemd

from deploys.common import cluster_config
from facts.storage import BlockDevices, HasFiles, MdArrays, MdConfig, array_line
from mailstack import storage as rules


class StorageRefused(PyinfraError):
    """The configured storage would destroy or hide data: nothing was done."""


def refuse_if(where: str, problems: list[str]) -> None:
    if problems:
        raise StorageRefused("\n".join(f"{where}: {problem}" for problem in problems))


@operation()
def md_config(array_name: str, device: str, mail_to: str):
    """
    Record array ``array_name`` (running as ``device``) in mdadm.conf and the initramfs, so it
    assembles under its name at boot, and send mdadm's alerts to ``mail_to``. Other arrays'
    lines are kept.
    """
    found = host.get_fact(MdConfig, array_name=array_name, device=device)
    if found["running"] and sorted(found["configured"]) == sorted([f"MAILADDR {mail_to}", found["running"]]):
        host.noop(f"{device} is recorded in mdadm.conf")
        return
    conf = "/etc/mdadm/mdadm.conf"
    yield (
        f"{{ grep -vE '^(MAILADDR|ARRAY /dev/md/{array_name} )' {conf}; echo {shlex.quote(f'MAILADDR {mail_to}')};"
        f" {array_line(array_name, device)}; }} > {conf}.new && mv {conf}.new {conf}"
    )
    yield "update-initramfs -u"


@operation()
def fstab_entry(device: str, mount_point: str, filesystem: str, options: list[str]):
    """The one /etc/fstab line for ``mount_point``: the filesystem of ``device`` by UUID."""
    known = host.get_fact(BlockDevices, devices=(device,))[device] or {}
    fields = f"{mount_point} {filesystem} {','.join(options)} 0 2"
    fstab = host.get_fact(FileContents, path="/etc/fstab") or []
    entries = [line for line in fstab if line.split()[1:2] == [mount_point]]
    if known.get("uuid") and entries == [f"UUID={known['uuid']} {fields}"]:
        host.noop(f"/etc/fstab mounts {mount_point}")
        return
    # On the first run the filesystem is made in this deploy: its UUID is read when it exists.
    yield (
        f"uuid=$(blkid -s UUID -o value {device}) && [ -n \"$uuid\" ]"
        f" && awk -v mount_point={mount_point} '$2 != mount_point' /etc/fstab > /etc/fstab.new"
        f" && echo \"UUID=$uuid {fields}\" >> /etc/fstab.new && mv /etc/fstab.new /etc/fstab"
        " && systemctl daemon-reload"
    )


@operation()
def mounted(mount_point: str, options: list[str]):
    """``mount_point`` mounted as /etc/fstab says, with ``options`` in effect."""
    live = host.get_fact(Mounts).get(mount_point)
    if live is None:
        yield f"mkdir -p {mount_point} && mount {mount_point}"
    elif not set(options) <= set(live["options"]):
        yield f"mount -o remount {mount_point}"
    else:
        host.noop(f"{mount_point} is mounted")


@deploy("Storage")
def storage():
    config = cluster_config()
    layout = config.hosts[host.name].storage
    where = f"{config.source}: hosts.{host.name}.storage"
    refuse_if(where, [] if layout.mdraid else ["zfs: not supported yet; use mdraid (issue 8)"])
    software_raid(where + ".mdraid", layout.mdraid, config.postmaster)


def software_raid(where: str, raid, mail_to: str):
    packages = ["mdadm"] + (["xfsprogs"] if raid.filesystem == "xfs" else [])
    arrays = host.get_fact(MdArrays)
    refuse_if(where, rules.md_refusals(raid, arrays, host.get_fact(BlockDevices, devices=tuple(raid.devices))))
    running = rules.find_array(raid, arrays)
    device = running[0] if running else rules.array_device(raid)
    filesystem = host.get_fact(BlockDevices, devices=(device,))[device]
    refuse_if(where, [problem for problem in [rules.filesystem_refusal(raid, device, filesystem)] if problem])
    if raid.mount_point not in host.get_fact(Mounts) and host.get_fact(HasFiles, path=raid.mount_point):
        refuse_if(where, [f"{raid.mount_point} is not empty: a filesystem mounted there would hide its files"])

    apt.packages(name="Install mdadm", packages=packages)
    if not running:
        wipe = [f"wipefs --all --quiet {member}" for member in raid.devices if member in raid.wipe]
        server.shell(
            name=f"Create RAID{raid.level} array {raid.name}",
            commands=[
                *wipe,
                f"mdadm --create {device} --name={raid.name} --level={raid.level} --metadata=1.2 --run"
                f" --raid-devices={len(raid.devices)} {' '.join(raid.devices)}",
            ],
        )
    if not (filesystem and filesystem["signatures"]):
        server.shell(
            name=f"Make the {raid.filesystem} filesystem",
            commands=[f"mkfs.{raid.filesystem} -q {device}"],
        )
    md_config(
        name="Record the array in mdadm.conf and the initramfs", array_name=raid.name, device=device, mail_to=mail_to
    )
    fstab_entry(
        name=f"Mount {raid.mount_point} at boot",
        device=device, mount_point=raid.mount_point, filesystem=raid.filesystem, options=raid.mount_options,
    )
    mounted(name=f"Mount {raid.mount_point}", mount_point=raid.mount_point, options=raid.mount_options)
    # Debian starts mdadm's monitor with the array; it mails the MAILADDR of mdadm.conf.
    systemd.service(name="Monitor the array", service="mdmonitor", running=True)
