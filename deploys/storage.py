"""Storage for /var/vmail on hosts in the storage group: an mdadm array (``mdraid``) or a
ZFS pool (``zfs``).

Every refusal (``mailstack.storage``) is decided while pyinfra prepares, from facts, so a
disk that holds data stops the whole deploy before any host is touched.
"""

import re
import shlex

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import KernelVersion, Mounts
from pyinfra.operations import apt, server, systemd

from deploys.common import cluster_config
from facts.apt import MAIN_ENTRY, DebianSourcesWithout, has_component
from facts.storage import BlockDevices, HasFiles, MdArrays, MdConfig, ZfsDatasets, ZfsPools, array_line
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


@operation()
def debian_component(component: str):
    """
    Debian's own apt sources take ``component`` (contrib, non-free) beside main.

    + component: the archive section to add to every entry that has main
    """
    files = host.get_fact(DebianSourcesWithout, component=component)
    if not files:
        host.noop(f"Debian's apt sources take {component}")
        return
    yield add_component(component, files)


def add_component(component: str, files: list[str]) -> str:
    """Shell: add ``component`` after main to each entry of ``files`` that has main and lacks it."""
    script = f"/{MAIN_ENTRY}/{{/{has_component(component)}/!s/[[:space:]]main([[:space:]]|$)/ main {component}\\1/}}"
    return f"sed -i -E {shlex.quote(script)} {' '.join(shlex.quote(file) for file in files)}"


@operation()
def shell_variables(path: str, values: dict[str, str]):
    """
    A file of shell variables that a service sources (``/etc/zfs/zed.d/zed.rc``) sets each
    of ``values``, once: their lines, commented out or not, give way to one line each.

    + path: the file, which the package that owns it has installed
    + values: variable name to value
    """
    assigning = re.compile(_assigning(values))
    if [line for line in host.get_fact(FileContents, path=path) or [] if assigning.match(line)] == _assignments(values):
        host.noop(f"{path} sets {', '.join(values)}")
        return
    yield set_shell_variables(path, values)


def set_shell_variables(path: str, values: dict[str, str]) -> str:
    """Shell: drop every line assigning one of ``values``, commented out or not, then add one each."""
    lines = " ".join(shlex.quote(line) for line in _assignments(values))
    drop = shlex.quote(f"/{_assigning(values)}/d")
    return f"sed -i -E {drop} {path} && printf '%s\\n' {lines} >> {path}"


def _assignments(values: dict[str, str]) -> list[str]:
    return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def _assigning(values: dict[str, str]) -> str:
    """A line that assigns one of ``values`` or is such a line commented out (Python's re and sed -E)."""
    return rf"^#?\s*({'|'.join(values)})="


@operation()
def zfs_dataset(dataset: str, properties: dict[str, str]):
    """
    ZFS filesystem ``dataset`` exists, mounted, with ``properties`` as ``zfs get -p`` shows them.

    pyinfra's ``zfs.dataset`` compares ZFS's rounded sizes ("1.50G") with the wanted ones, so
    a quota would be set again on every run; here both sides are exact.
    """
    found = host.get_fact(ZfsDatasets, properties=("mounted", *sorted(properties))).get(dataset)
    if found is None:
        yield " ".join(["zfs create", *(f"-o {shlex.quote(f'{k}={v}')}" for k, v in properties.items()), dataset])
        return
    changed = [f"{key}={value}" for key, value in properties.items() if found.get(key) != value]
    unmounted = properties.get("mountpoint", "none") != "none" and found.get("mounted") != "yes"
    if not (changed or unmounted):
        host.noop(f"{dataset} is as configured")
        return
    if changed:
        yield f"zfs set {' '.join(shlex.quote(change) for change in changed)} {dataset}"
    if unmounted:
        yield f"zfs mount {dataset}"


@deploy("Storage")
def storage():
    config = cluster_config()
    layout = config.hosts[host.name].storage
    where = f"{config.source}: hosts.{host.name}.storage"
    if layout.mdraid:
        software_raid(where + ".mdraid", layout.mdraid, config.postmaster)
    else:
        zfs_pool(where + ".zfs", layout.zfs, config.postmaster)


def refuse_hiding_files(where: str, mount_point: str) -> None:
    if mount_point not in host.get_fact(Mounts) and host.get_fact(HasFiles, path=mount_point):
        refuse_if(where, [f"{mount_point} is not empty: a filesystem mounted there would hide its files"])


def software_raid(where: str, raid, mail_to: str):
    packages = ["mdadm"] + (["xfsprogs"] if raid.filesystem == "xfs" else [])
    arrays = host.get_fact(MdArrays)
    disks = host.get_fact(BlockDevices, devices=tuple(raid.devices))
    refuse_if(where, rules.md_refusals(raid, arrays, disks))
    running = rules.find_array(raid, arrays)
    device = running[0] if running else rules.array_device(raid)
    filesystem = host.get_fact(BlockDevices, devices=(device,))[device]
    refuse_if(where, rules.filesystem_refusals(raid, device, filesystem))
    refuse_hiding_files(where, raid.mount_point)

    apt.packages(name="Install mdadm", packages=packages)
    if not running:
        server.shell(
            name=f"Create RAID{raid.level} array {raid.name}",
            commands=[
                *rules.wipe_commands(raid.devices, raid.wipe, disks),
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


def zfs_pool(where: str, zfs, mail_to: str):
    pools = host.get_fact(ZfsPools)
    devices = rules.zfs_devices(zfs)
    disks = host.get_fact(BlockDevices, devices=tuple(devices))
    refuse_if(where, rules.zfs_refusals(zfs, pools, disks))
    for dataset in zfs.datasets:
        refuse_hiding_files(where, dataset.mount_point)

    contrib = debian_component(name="Take packages from Debian's contrib section (ZFS)", component="contrib")
    apt.update(name="Update apt lists with contrib", _if=contrib.did_change)
    apt.packages(name="Install ZFS (its module is built by DKMS)", packages=zfs_packages())
    server.modprobe(name="Load the ZFS module", module="zfs")
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
    # ZFS's own timers; Debian's cron scrub is off for the pool (mailstack.storage.DEBIAN_SCRUB).
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
