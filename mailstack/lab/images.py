"""The two images every lab host starts from, built once per Debian release with debootstrap and cached.

- ``base``: a booted-container root (systemd, sshd, python3) shared read-only by every
  container through overlayfs;
- ``vm``: a root tree with Debian's cloud kernel for QEMU guests, which need a real
  kernel (RAID, ZFS); each guest gets its own disk image made from it (from a copy with
  more: ZFS for a guest whose storage is a pool, the packages of its groups for a guest in
  more groups than ``storage``).

Both carry the Debian packages of the components their hosts may get, unpacked once here
instead of on every host at its first deploy (under TCG, about 20 s per package set on the
guest). Each service those packages enabled is disabled again, so a host boots running what
a bare Debian host runs, and the deploy starts and enables what it configures. The deploy
still asks apt for every package, as on a bare host.

An image is named for its release and the recipe that makes it (this module and the
packages), so a change to the recipe builds new images, and hosts made from the old ones
are made again.
"""

import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deploys.mail_cluster import CLUSTER

from ..component import EVERY_HOST, Component
from .system import STATE, LabError, progress, run, unmount_below

IMAGES = STATE / "images"
SUITE = "bookworm"
COMMON = ["systemd", "systemd-sysv", "dbus", "iproute2", "openssh-server", "python3", "ca-certificates"]
VM_EXTRA = ["udev", "kmod", "busybox", "mdadm", "linux-image-cloud-amd64", "initramfs-tools", "e2fsprogs"]
VM_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "ext4"]
# From contrib, with the headers DKMS builds the module against (the metapackage too, as on a
# real host, so that the deploy finds them installed).
ZFS = ["zfs-dkms", "zfsutils-linux", "linux-headers-cloud-amd64"]
# Key pairs that packages make at installation, which would otherwise be the same on every host.
PACKAGE_KEYS = ["etc/ssl/private/ssl-cert-snakeoil.key", "etc/ssl/certs/ssl-cert-snakeoil.pem",
                "etc/dovecot/private/dovecot.key", "etc/dovecot/private/dovecot.pem",
                "etc/corosync/qnetd/nssdb/key4.db"]  # corosync-qnetd's CA (the deploy makes its own)
# Stays enabled, as on a standard Debian host: disabling it drops its syslog.service alias,
# without which syslog.socket cannot start it again.
SYSTEM_LOGGER = {"rsyslog.service"}
# The cluster's packages, and the tools that check the lab services' files (mailstack.validators
# checks a release's files in its base image); not the lab services themselves: Cyrus's server
# conflicts with Dovecot. Containers serve any group; the guest (``storage``) gets the
# components of every host. MAILSTACK_LAB_PRELOAD=no makes images without them: hosts as bare
# as production's.
PRELOAD = os.environ.get("MAILSTACK_LAB_PRELOAD", "yes") != "no"
COMPONENTS = [part for part in CLUSTER if isinstance(part, Component)] if PRELOAD else []
LAB_CHECKERS = ["bind9-utils", "unbound", "cyrus-common"] if PRELOAD else []
CLUSTER_PACKAGES = sorted({name for component in COMPONENTS for name in component.packages})
CONTAINER_PRELOAD = sorted({*CLUSTER_PACKAGES, *LAB_CHECKERS})
VM_PRELOAD = sorted({name for component in COMPONENTS if component.groups == EVERY_HOST for name in component.packages})


def mirror() -> str:
    """The Debian mirror this machine's own apt uses (the lab reaches it only through the proxy)."""
    sources = " ".join(
        path.read_text() for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
        if path.is_file()
    )
    found = re.search(r"(https?://\S+/debian)/?\s", sources + " ")
    return found[1] if found else "http://deb.debian.org/debian"


RECIPE = hashlib.sha256(Path(__file__).read_bytes() + " ".join(CONTAINER_PRELOAD).encode()).hexdigest()[:12]


def base_image(suite: str = SUITE) -> Path:
    def make(root: Path) -> None:
        _bootstrap(root, suite, COMMON)
        _generalise(root, suite, CONTAINER_PRELOAD)
    return _image("base", suite, make)


def vm_image(suite: str = SUITE, groups: Iterable[str] = (), zfs: bool = False) -> Path:
    """The guests' image. A guest that needs more gets a copy of its own that carries it:
    ZFS (``zfs``), for a guest whose storage is a pool, its module built here natively by DKMS
    (3 to 4 minutes; over 20 inside a guest without KVM), and only on a machine that makes
    such a guest; and the packages of groups whose components need more than every guest's
    (an mx host of a Debian 13 pair): installed here, natively, they save that guest's first
    deploy about 14 minutes of TCG."""
    def make(root: Path) -> None:
        _bootstrap(root, suite, COMMON + VM_EXTRA)
        _prepare_for_qemu(root, suite)

    image = _image("vm", suite, make)
    wanted = {name for component in COMPONENTS if component.groups & set(groups) for name in component.packages}
    extra = sorted(wanted - set(VM_PRELOAD))
    if not extra and not zfs:
        return image

    def make_with_more(root: Path) -> None:
        run("cp", "-a", f"{image}/.", root)
        if zfs:
            _install_zfs(root, suite)
        if extra:
            preload(root, extra)
    more = [*(sorted(groups) if extra else []), *(["zfs"] if zfs else [])]
    return _image("-".join(["vm", *more]), suite, make_with_more)


def _image(name: str, suite: str, make: Callable[[Path], None]) -> Path:
    """Build an image once; a half-built one (a crash, Ctrl-C) is thrown away and rebuilt,
    and one of an older recipe is deleted once no host's overlay uses it."""
    image = IMAGES / f"{name}-{suite}-{RECIPE}"
    IMAGES.mkdir(parents=True, exist_ok=True)
    with _alone(IMAGES / f".{name}-{suite}.lock"):
        if not image.is_dir():
            _build(image, name, suite, make)
    return image


@contextmanager
def _alone(lock: Path) -> Iterator[None]:
    """One builder of an image at a time: the unit tests' checks and the staging's box may
    ask for the same one at once; the second waits, then finds it built."""
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def _build(image: Path, name: str, suite: str, make: Callable[[Path], None]) -> None:
    mounts = Path("/proc/mounts").read_text()
    for stale in IMAGES.glob(f"{name}-{suite}[-.]*"):
        if f"{stale}," not in mounts:
            unmount_below(stale)
            shutil.rmtree(stale, ignore_errors=True)
    partial = IMAGES / f"{name}-{suite}.partial"
    partial.mkdir(parents=True)
    duration = "about a minute" if name == "base" else "minutes"
    progress(f"building the {name} image of Debian {suite} (once; {duration})")
    make(partial)
    partial.rename(image)


def _bootstrap(root: Path, suite: str, packages: list[str]) -> None:
    run("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, root, mirror())


def _generalise(root: Path, suite: str, packages: list[str]) -> None:
    """Preload the components' packages; remove what must differ per host and what would
    disturb a test host."""
    # Each host makes its own at first boot: D-Bus's copy would give every host the image's
    # (and one DHCP identity to every staging VM).
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        (root / "etc/systemd/system" / timer).symlink_to("/dev/null")
    (root / "etc/apt/sources.list").write_text(
        f"deb http://deb.debian.org/debian {suite} main\n"
        f"deb http://deb.debian.org/debian {suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {suite}-security main\n"
    )
    preload(root, packages)


def preload(root: Path, packages: list[str]) -> None:
    """Install ``packages`` as a deploy would (without recommends: the deploy's apt settings say
    so, and what they recommend, such as OpenIPMI's service, fails on hosts without its
    hardware), then drop the key pairs they made."""
    with _started_by_nothing(root):
        _apt_install(root, packages, "--no-install-recommends")
    run("chroot", root, "apt-get", "clean")
    for key in [*(root / "etc/ssh").glob("ssh_host_*"), *(root / path for path in PACKAGE_KEYS)]:
        key.unlink(missing_ok=True)


@contextmanager
def _started_by_nothing(root: Path) -> Iterator[None]:
    """What is installed inside starts nothing (policy-rc.d) and is enabled for no boot: a
    host boots running what a bare Debian host runs, and waits on nothing it does not use
    (ZFS's import units wait for udev to settle)."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    enabled = _enabled_units(root)
    try:
        yield
    finally:
        policy.unlink()
    for unit in sorted(_enabled_units(root) - enabled - SYSTEM_LOGGER):
        run("chroot", root, "systemctl", "disable", "--quiet", unit)


def _enabled_units(root: Path) -> set[str]:
    listed = run("chroot", root, "systemctl", "list-unit-files", "--state=enabled", "--no-legend",
                 "--type=service,socket,target").stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _apt_install(root: Path, packages: list[str], *options: str) -> None:
    """Download on this machine's network, install in one of its own with only loopback:
    what the packages' scripts do (iptables-persistent saves the rules it sees, Postfix's
    newaliases wants an interface) never touches this machine's network."""
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["chroot", root, "apt-get", "install", "-y", "-q", *options, *packages]
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        run("chroot", root, "apt-get", "update", "-q")
        run(*install, "--download-only", env=environment)
        run("unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *install, env=environment)
    finally:
        unmount_below(root / "proc")


def _prepare_for_qemu(root: Path, suite: str) -> None:
    """A small initrd with just the virtio drivers, the root on /dev/vda, networkd for addresses."""
    _generalise(root, suite, VM_PRELOAD)
    (root / "etc/initramfs-tools/conf.d/mailstack").write_text("MODULES=list\n")
    (root / "etc/initramfs-tools/modules").write_text("\n".join(VM_MODULES) + "\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    # ACPI power button: `lab down` asks the guest to power off through it.
    (root / "etc/modules-load.d/power-button.conf").write_text("button\nevdev\n")
    run("chroot", root, "update-initramfs", "-u", "-k", "all")
    run("chroot", root, "systemctl", "enable", "systemd-networkd", "serial-getty@ttyS0")


def _install_zfs(root: Path, suite: str) -> None:
    """ZFS from contrib, its module built here, natively, for the guest's kernel. Only the
    suite debootstrap used, whose headers match the installed kernel; the image's own sources
    come back afterwards, as the deploy expects them."""
    (release,) = [path.name for path in (root / "lib/modules").iterdir()]
    sources = root / "etc/apt/sources.list"
    kept = sources.read_text()
    sources.write_text(f"deb {mirror()} {suite} main contrib\n")
    try:
        preload(root, ZFS)  # started by nothing: the storage deploy enables a pool's import at boot
    finally:
        sources.write_text(kept)
    if not any((root / f"lib/modules/{release}/updates/dkms").glob("zfs.ko*")):  # trixie's DKMS: zfs.ko.xz
        raise LabError(f"DKMS built no ZFS module for the guest's kernel {release}; see {root}/var/lib/dkms")


def kernel(vm_root: Path) -> tuple[Path, Path]:
    """The kernel and initrd of a VM root tree, for QEMU's direct kernel boot."""
    return vm_root / "vmlinuz", vm_root / "initrd.img"
