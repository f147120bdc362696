"""The two images every lab host starts from, built once with debootstrap and cached.

- ``base``: a booted-container root (systemd, sshd, python3) shared read-only by every
  container through overlayfs;
- ``vm``: a root tree with Debian's cloud kernel for QEMU guests, which need a real
  kernel (RAID, ZFS); each guest gets its own disk image made from it.

An image is named for the recipe that makes it (this module), so a change to the recipe
builds new images, and hosts made from the old ones are made again.
"""

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from .system import STATE, LabError, progress, run, unmount_below

IMAGES = STATE / "images"
SUITE = "bookworm"
COMMON = ["systemd", "systemd-sysv", "dbus", "iproute2", "openssh-server", "python3", "ca-certificates"]
VM_EXTRA = ["udev", "kmod", "busybox", "mdadm", "linux-image-cloud-amd64", "initramfs-tools", "e2fsprogs"]
VM_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "ext4"]
# From contrib, with the headers DKMS builds the module against (the metapackage too, as on a
# real host, so that the deploy finds them installed).
ZFS = ["zfs-dkms", "zfsutils-linux", "linux-headers-cloud-amd64"]


def mirror() -> str:
    """The Debian mirror this machine's own apt uses (the lab reaches it only through the proxy)."""
    sources = " ".join(
        path.read_text() for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
        if path.is_file()
    )
    found = re.search(r"(https?://\S+/debian)/?\s", sources + " ")
    return found[1] if found else "http://deb.debian.org/debian"


RECIPE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def base_image() -> Path:
    return _image("base", COMMON, _generalise)


def vm_image() -> Path:
    return _image("vm", COMMON + VM_EXTRA, _prepare_for_qemu)


def _image(name: str, packages: list[str], prepare: Callable[[Path], None]) -> Path:
    """Build an image once; a half-built one (a crash, Ctrl-C) is thrown away and rebuilt,
    and one of an older recipe is deleted once no host's overlay uses it."""
    image = IMAGES / f"{name}-{RECIPE}"
    if image.is_dir():
        return image
    mounts = Path("/proc/mounts").read_text()
    for stale in IMAGES.glob(f"{name}[-.]*"):
        if f"{stale}," not in mounts:
            unmount_below(stale)
            shutil.rmtree(stale, ignore_errors=True)
    partial = IMAGES / f"{name}.partial"
    partial.mkdir(parents=True)
    progress(f"building the {name} image with debootstrap (once; {'about a minute' if name == 'base' else 'minutes'})")
    run("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, partial, mirror())
    prepare(partial)
    partial.rename(image)
    return image


def _generalise(root: Path) -> None:
    """Remove what must differ per host and what would disturb a test host."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        (root / "etc/systemd/system" / timer).symlink_to("/dev/null")
    (root / "etc/apt/sources.list").write_text(
        f"deb http://deb.debian.org/debian {SUITE} main\n"
        f"deb http://deb.debian.org/debian {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
    )
    run("chroot", root, "apt-get", "clean")


def _prepare_for_qemu(root: Path) -> None:
    """ZFS, a small initrd with just the virtio drivers, the root on /dev/vda, networkd for addresses."""
    _install_zfs(root)
    _generalise(root)
    (root / "etc/initramfs-tools/conf.d/mailstack").write_text("MODULES=list\n")
    (root / "etc/initramfs-tools/modules").write_text("\n".join(VM_MODULES) + "\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    # ACPI power button: `lab down` asks the guest to power off through it.
    (root / "etc/modules-load.d/power-button.conf").write_text("button\nevdev\n")
    run("chroot", root, "update-initramfs", "-u", "-k", "all")
    run("chroot", root, "systemctl", "enable", "systemd-networkd", "serial-getty@ttyS0")


def _install_zfs(root: Path) -> None:
    """ZFS from contrib, its module built here, natively, for the guest's kernel: DKMS takes
    a couple of minutes on this machine, and over 20 inside a guest without KVM."""
    (release,) = [path.name for path in (root / "lib/modules").iterdir()]
    # Only the suite debootstrap used: its headers match the installed kernel.
    (root / "etc/apt/sources.list").write_text(f"deb {mirror()} {SUITE} main contrib\n")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        run("chroot", root, "apt-get", "update", "-q")
        run("chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *ZFS, env=environment)
    finally:
        unmount_below(root / "proc")
    if not (root / f"lib/modules/{release}/updates/dkms/zfs.ko").exists():
        raise LabError(f"DKMS built no ZFS module for the guest's kernel {release}; see {root}/var/lib/dkms")


def kernel(vm_root: Path) -> tuple[Path, Path]:
    """The kernel and initrd of a VM root tree, for QEMU's direct kernel boot."""
    return vm_root / "vmlinuz", vm_root / "initrd.img"
