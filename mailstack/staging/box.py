"""The local Vagrant box: Debian for libvirt, built here from the lab's VM image.

No box can be downloaded on a machine without Internet, so this makes one like the public
``debian/bookworm64`` (``debian/trixie64`` for a staging on Debian 13): user ``vagrant``
with passwordless sudo and Vagrant's insecure key, sshd, python3, DHCP on every interface,
and a partitioned disk that boots by itself (extlinux). Like the lab's images it carries the
Debian packages of every component, so that a deploy under TCG does not unpack them on each
VM; the deploy still asks apt for them, as on the public box.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..lab import images
from ..lab.system import STATE, progress, run, unmount_below

BOXES = STATE / "boxes"
RECIPE = hashlib.sha256(images.RECIPE.encode() + Path(__file__).read_bytes()).hexdigest()[:12]
"""The lab images' recipe and this module's: a change to either builds a new box."""
VOLUME_PREFIX = "mailstack-VAGRANTSLASH-"
"""How libvirt's pool names its copies of the local boxes."""
DISK_SIZE = 20 << 30  # what the VM sees; the qcow2 image holds only what is written
PARTITION = 1 << 20  # the root partition's offset: the usual first MiB for the boot code
KERNEL_OPTIONS = "root=/dev/vda1 rw console=ttyS0 net.ifnames=0"
BOOT_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
# The box's own Vagrantfile: the root is on the first virtio disk (vda).
BOX_VAGRANTFILE = 'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |libvirt|\n' \
                  '    libvirt.disk_bus = "virtio"\n  end\nend\n'
# sshd needs host keys of its own on each VM: made at first boot, as Debian's cloud images do.
HOST_KEYS_UNIT = """[Unit]
Description=Make this host's SSH host keys
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


def vagrant_home() -> Path:
    return Path(os.environ.get("VAGRANT_HOME", Path.home() / ".vagrant.d"))


def name(release: str) -> str:
    """The local box of a Debian release, named like the public one (``debian/<release>64``)."""
    return f"mailstack/{release}64"


def added(release: str) -> bool:
    """Whether Vagrant holds the box of the current recipe."""
    recipe = vagrant_home() / "boxes" / name(release).replace("/", "-VAGRANTSLASH-") / "0" / "libvirt" / "recipe"
    return recipe.exists() and recipe.read_text() == RECIPE


def add(release: str) -> None:
    """Build the box if its recipe changed and give it to Vagrant."""
    if not added(release):
        run("vagrant", "box", "add", "--force", "--name", name(release), build(release))


def build(release: str) -> Path:
    box = BOXES / f"{release}64-{RECIPE}.box"
    if box.exists():
        return box
    work = BOXES / f"partial-{release}"
    unmount_below(work)
    shutil.rmtree(work, ignore_errors=True)
    for stale in BOXES.glob(f"{release}64-*.box"):
        stale.unlink()
    work.mkdir(parents=True)
    progress(f"building the Vagrant box {name(release)} from the lab's VM image (once; minutes)")
    tree = work / "root"
    _overlay(images.vm_image(release, zfs=True), work, tree)  # staging.yml keeps mx2's mail on ZFS
    try:
        images.preload(tree, [*images.CLUSTER_PACKAGES, "sudo"])
        _make_vagrant_host(tree)
        raw = _bootable_disk(tree, work)
    finally:
        unmount_below(tree)
    run("qemu-img", "convert", "-O", "qcow2", raw, work / "box.img")
    raw.unlink()
    (work / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                                    "virtual_size": DISK_SIZE >> 30}))
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    (work / "recipe").write_text(RECIPE)
    run("tar", "-C", work, "-cf", box, "metadata.json", "Vagrantfile", "recipe", "box.img")
    shutil.rmtree(work)
    return box


def _overlay(lower: Path, work: Path, tree: Path) -> None:
    for folder in (work / "upper", work / "work", tree):
        folder.mkdir()
    run("mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={lower},upperdir={work / 'upper'},workdir={work / 'work'}", tree)


def _make_vagrant_host(root: Path) -> None:
    """User vagrant with Vagrant's insecure key and sudo; DHCP everywhere; fresh SSH host keys."""
    run("chroot", root, "useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "vagrant")
    ssh = root / "home/vagrant/.ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text(_insecure_public_key())
    run("chroot", root, "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh")
    sudoers = root / "etc/sudoers.d/vagrant"
    sudoers.write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    # Vagrant's own files (50-vagrant-*) configure its private networks; this catches the rest.
    (root / "etc/systemd/network/99-dhcp.network").write_text("[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\n")
    (root / "etc/systemd/system/ssh-host-keys.service").write_text(HOST_KEYS_UNIT)
    run("chroot", root, "systemctl", "enable", "--quiet", "ssh-host-keys.service")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    (root / "etc/fstab").write_text("/dev/vda1 / ext4 defaults,errors=remount-ro 0 1\n")
    (root / "boot/extlinux").mkdir()
    (root / "boot/extlinux/extlinux.conf").write_text(
        f"DEFAULT debian\nTIMEOUT 1\n\nLABEL debian\n  LINUX /vmlinuz\n  INITRD /initrd.img\n"
        f"  APPEND {KERNEL_OPTIONS}\n"
    )


def _insecure_public_key() -> str:
    """The public half of the key Vagrant logs in with until it inserts its own (``vagrant box
    list`` makes the private half appear in Vagrant's home)."""
    run("vagrant", "box", "list")
    return run("ssh-keygen", "-y", "-f", vagrant_home() / "insecure_private_key").stdout


def _bootable_disk(tree: Path, work: Path) -> Path:
    """One partition holding ``tree``, extlinux in it and the boot code before it."""
    raw = work / "disk.raw"
    with open(raw, "wb") as disk:
        disk.truncate(DISK_SIZE)
    run("sfdisk", "--quiet", raw, input=f"start={PARTITION >> 9}, type=83, bootable\n")
    run("mkfs.ext4", "-q", "-L", "root", "-E", f"offset={PARTITION}", "-d", tree, raw,
        f"{(DISK_SIZE - PARTITION) >> 10}k")
    mounted = work / "mnt"
    mounted.mkdir()
    run("mount", "-o", f"loop,offset={PARTITION}", raw, mounted)
    try:
        run("extlinux", "--install", mounted / "boot/extlinux")
    finally:
        unmount_below(mounted)
    run("dd", f"if={BOOT_CODE}", f"of={raw}", "bs=440", "count=1", "conv=notrunc")
    return raw
