"""Storage for /var/vmail on hosts in the storage group: an mdadm array (``mdraid``) or a
ZFS pool (``zfs``).

Every refusal (``mailstack.storage_rules``) is decided while pyinfra prepares, from facts, so a
disk that holds data stops the whole deploy before any host is touched.
"""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import KernelVersion, Mounts
from pyinfra.operations import apt, server, systemd

from facts.devices import DeviceContents, HasFiles
from facts.mdadm import MdArrays
from facts.zfs import ZpoolStatus
from mailstack import storage_rules as rules
from mailstack.component import Component
from operations.apt_sources import debian_component
from operations.components import cluster_config
from operations.mdadm import md_config
from operations.mounts import fstab_entry, mounted
from operations.shell_files import shell_variables
from operations.units import enabled_at_boot
from operations.zfs import zfs_dataset


class StorageRefused(PyinfraError):
    """The configured storage would destroy or hide data: nothing was done."""


def refuse_if(where: str, problems: list[str]) -> None:
    if problems:
        raise StorageRefused("\n".join(f"{where}: {problem}" for problem in problems))


@deploy("Storage")
def storage():
    config = cluster_config()
    layout = config.hosts[host.name].storage
    where = f"{config.source}: hosts.{host.name}.storage"
    if layout.mdraid:
        # On a Debian 13 mx pair the array is DRBD's disk (deploys/drbd.py); Pacemaker mounts it.
        software_raid(where + ".mdraid", layout.mdraid, config.postmaster, config.mailboxes_on_drbd(host.name))
    else:
        zfs_pool(where + ".zfs", layout.zfs, config.postmaster)


def refuse_hiding_files(where: str, mount_point: str) -> None:
    if mount_point not in host.get_fact(Mounts) and host.get_fact(HasFiles, path=mount_point):
        refuse_if(where, [f"{mount_point} is not empty: a filesystem mounted there would hide its files"])


def software_raid(where: str, raid, mail_to: str, under_drbd: bool = False):
    packages = ["mdadm"] + (["xfsprogs"] if raid.filesystem == "xfs" else [])
    arrays = host.get_fact(MdArrays)
    disks = host.get_fact(DeviceContents, devices=tuple(raid.devices))
    refuse_if(where, rules.md_refusals(raid, arrays, disks))
    running = rules.find_array(raid, arrays)
    device = running[0] if running else rules.array_device(raid)
    filesystem = None if under_drbd else host.get_fact(DeviceContents, devices=(device,))[device]
    if not under_drbd:
        refuse_if(where, rules.filesystem_refusals(raid, device, filesystem))
        refuse_hiding_files(where, raid.mount_point)

    apt.packages(name="Install mdadm", packages=packages)
    if not running:
        server.shell(
            name=f"Create RAID{raid.level} array {raid.name}",
            commands=[
                *rules.wipe_commands(raid.devices, raid.wipe, disks),
                rules.mdadm_create(raid, device),
            ],
        )
    if not (under_drbd or filesystem and filesystem["signatures"]):
        server.shell(
            name=f"Make the {raid.filesystem} filesystem",
            commands=[rules.mkfs(raid, device)],
        )
    md_config(
        name="Record the array in mdadm.conf and the initramfs", array_name=raid.name, device=device, mail_to=mail_to
    )
    if not under_drbd:
        fstab_entry(
            name=f"Mount {raid.mount_point} at boot",
            device=device, mount_point=raid.mount_point, filesystem=raid.filesystem, options=raid.mount_options,
        )
        mounted(name=f"Mount {raid.mount_point}", mount_point=raid.mount_point, options=raid.mount_options)
    # Debian starts mdadm's monitor with the array; it mails the MAILADDR of mdadm.conf.
    systemd.service(name="Monitor the array", service="mdmonitor", running=True)


# Debian's packages enable these; a host that came with them disabled (the lab's images,
# whose hosts do not all hold a pool) would boot without its pool.
BOOT_IMPORT = ["zfs-load-module.service", "zfs-import-cache.service", "zfs-import.target",
               "zfs-mount.service", "zfs.target"]


def zfs_pool(where: str, zfs, mail_to: str):
    pools = host.get_fact(ZpoolStatus)
    devices = rules.zfs_devices(zfs)
    disks = host.get_fact(DeviceContents, devices=tuple(devices))
    refuse_if(where, rules.zfs_refusals(zfs, pools, disks))
    for dataset in zfs.datasets:
        refuse_hiding_files(where, dataset.mount_point)

    contrib = debian_component(name="Take packages from Debian's contrib section (ZFS)", component="contrib")
    apt.update(name="Update apt lists with contrib", _if=contrib.did_change)
    apt.packages(name="Install ZFS (its module is built by DKMS)", packages=zfs_packages())
    server.modprobe(name="Load the ZFS module", module="zfs")
    enabled_at_boot(name="Import and mount the pool at boot", units=BOOT_IMPORT)
    wanted = rules.dataset_properties(zfs)
    if zfs.pool in pools:
        zfs_dataset(name=f"Set the properties of pool {zfs.pool}", dataset=zfs.pool, properties=wanted.pop(zfs.pool))
    else:
        wanted.pop(zfs.pool)  # zpool create sets them
        server.shell(
            name=f"Create pool {zfs.pool}",
            commands=[*rules.wipe_commands(devices, zfs.wipe, disks), rules.zpool_create(zfs)],
        )
    for dataset, properties in wanted.items():
        zfs_dataset(name=f"Dataset {dataset}", dataset=dataset, properties=properties)
    # ZFS's own timers; Debian's cron scrub is off for the pool (mailstack.storage_rules.DEBIAN_SCRUB).
    for schedule in ("weekly", "monthly"):
        scrubbed = schedule == zfs.scrub
        systemd.service(
            name=f"{'Scrub' if scrubbed else 'Do not scrub'} {zfs.pool} {schedule}",
            service=f"zfs-scrub-{schedule}@{zfs.pool}.timer", running=scrubbed, enabled=scrubbed,
        )
    systemd.service(name="Run cron for zfs-auto-snapshot", service="cron", running=True, enabled=True)
    # ZFS's event daemon mails faults and scrub errors as mdadm's monitor does: through sendmail,
    # which takes the Subject line zed writes when its options name no subject.
    alerts = shell_variables(
        name="Mail ZFS faults to the postmaster",
        path="/etc/zfs/zed.d/zed.rc",
        values={"ZED_EMAIL_ADDR": mail_to, "ZED_EMAIL_PROG": "/usr/sbin/sendmail", "ZED_EMAIL_OPTS": "@ADDRESS@"},
    )
    systemd.service(name="Run the ZFS event daemon", service="zfs-zed", running=True, enabled=True)
    systemd.service(name="Restart the ZFS event daemon", service="zfs-zed", restarted=True, _if=alerts.did_change)


def zfs_packages() -> list[str]:
    """ZFS and the kernel headers DKMS builds its module against: the running kernel's, and
    the headers metapackage of each kernel metapackage installed (linux-image-amd64), so that
    every kernel update brings its headers and DKMS rebuilds the module before a reboot."""
    metapackages = [
        name.replace("linux-image-", "linux-headers-", 1)
        for name in host.get_fact(DebPackages) if re.fullmatch(r"linux-image-\D\S*", name)
    ]
    kernel = host.get_fact(KernelVersion)
    return [f"linux-headers-{kernel}", *metapackages, "zfs-dkms", "zfsutils-linux", "zfs-zed", "zfs-auto-snapshot"]


# Disks, arrays and mounts rather than files.
STORAGE = Component(storage, frozenset({"storage"}))
