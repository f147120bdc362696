"""Lab hosts: booted systemd-nspawn containers and QEMU guests, started and stopped alike.

Each host keeps its state under ``STATE/hosts/<name>``: a container its overlay upper
directory, a guest its disk images. ``start`` on a prepared host only boots it.
"""

import errno
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import images, network
from .system import STATE, LabError, mounts_below, processes, run, unmount_below

HOSTS = STATE / "hosts"
# CSI sequences (colours, cursor moves) and OSC ones, as systemd and getty write them to a console.
TERMINAL_CONTROL = re.compile(r"\x1b(\[[0-9;?!]*[A-Za-z]?|\][^\x07]*\x07)")
CGROUPS = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
CA_NAME = "mailstack-lab.crt"


class LabHost:
    """What containers and guests share: identity, state folder, stopping."""

    kind = ""

    def __init__(self, name: str, address: ipaddress.IPv4Interface, identity: dict[str, str],
                 release: str = images.SUITE):
        self.name = name
        self.address = address
        self.identity = identity
        self.release = release
        self.state = HOSTS / name

    def image(self) -> Path:
        """The image of the host's Debian release it starts from (built on first use)."""
        raise NotImplementedError

    @property
    def console(self) -> Path:
        return self.state / "console.log"

    def pids(self) -> list[int]:
        raise NotImplementedError

    def is_running(self) -> bool:
        return bool(self.pids())

    @property
    def _ready(self) -> Path:
        return self.state / "ready"

    def is_prepared(self) -> bool:
        """Made with the identity it is asked for now (a new lab key or CA means a new host)."""
        return self._ready.exists() and self._ready.read_text() == self._fingerprint()

    def mark_prepared(self) -> None:
        self._ready.write_text(self._fingerprint())

    def _fingerprint(self) -> str:
        """The identity, the release and the images' recipe: a host made from another image is made again."""
        return hashlib.sha256(f"{sorted(self.identity.items())!r} {self.release} {images.RECIPE}".encode()).hexdigest()

    def ssh_ready(self) -> bool:
        """sshd answers with its banner (a listening socket alone is not enough)."""
        try:
            with socket.create_connection((str(self.address.ip), 22), timeout=1) as connection:
                connection.settimeout(2)
                return connection.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def write_identity(self, root: Path) -> None:
        """Hostname, machine-id, SSH host keys, the lab's key for root, addresses, the lab CA."""
        for path, content in self.identity.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        (root / "root/.ssh").chmod(0o700)
        (root / "root/.ssh/authorized_keys").chmod(0o600)
        (root / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
        (root / "etc/hostname").write_text(self.name + "\n")
        run("ssh-keygen", "-A", "-f", root)
        run("chroot", root, "update-ca-certificates")
        public = [key.read_text().split()[:2] for key in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub"))]
        (self.state / "known_hosts").write_text("".join(f"{self.address.ip} {kind} {key}\n" for kind, key in public))

    link_prefix = ""
    """Prefix of the host's link into the bridge on this machine (see ``network.link_name``)."""

    @property
    def link(self) -> str:
        return network.link_name(self.link_prefix, self.name)

    def crash(self) -> None:
        """A power cut: every process of the host killed at once, then its traces cleared."""
        self.kill_everything()
        self.stop()

    def kill_everything(self) -> None:
        while pids := self.all_pids():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def all_pids(self) -> list[int]:
        return self.pids()

    def remove(self) -> None:
        """Stop the host and delete its state: what a bench does with a host it made."""
        self.stop()
        shutil.rmtree(self.state, ignore_errors=True)

    def exited_within(self, seconds: float) -> bool:
        """Whether the host's processes are all gone within ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.all_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        return not self.all_pids()

    def stop_processes(self, grace: float) -> None:
        """Ask politely (the caller has), wait ``grace`` seconds, then kill what is left: every
        process of the host, since a container's stay when nspawn alone is killed (a
        doveadm-server that did not end held two mx containers' shutdown past the grace once)."""
        if not self.exited_within(grace):
            self.kill_everything()


class Container(LabHost):
    """A booted Debian container: systemd as PID 1 in its own network namespace."""

    kind = "container"
    link_prefix = "ve"

    @property
    def root(self) -> Path:
        return self.state / "root"

    def pids(self) -> list[int]:
        return processes(f"--machine=mailstack-{self.name}")

    def image(self) -> Path:
        return images.base_image(self.release)

    def all_pids(self) -> list[int]:
        """nspawn and every process inside: all live in the container's own cgroup, whose
        groups below the container's systemd removes while it shuts down."""
        found = []
        for folder, _, _ in os.walk(CGROUPS[0] / "mailstack-lab" / self.name):
            try:
                found += [int(pid) for pid in (Path(folder) / "cgroup.procs").read_text().split()]
            except OSError:
                continue
        return found or self.pids()

    def start(self, bridge: str) -> None:
        fresh = not self.is_prepared()
        if fresh:
            self.stop()
            shutil.rmtree(self.state, ignore_errors=True)
        netns = network.namespace_up(self.name, bridge, self.address)
        for folder in ("upper", "work", "root"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        if not mounts_below(self.root):
            run(
                "mount", "-t", "overlay", "overlay",
                "-o", f"lowerdir={self.image()},upperdir={self.state / 'upper'},workdir={self.state / 'work'}",
                self.root,
            )
        if fresh:
            self.write_identity(self.root)
            self.mark_prepared()
        if not self.is_running():
            self._boot(netns)

    def _boot(self, netns: Path) -> None:
        command = [
            "systemd-nspawn", "--boot", "--register=no", "--keep-unit",
            f"--directory={self.root}", f"--machine=mailstack-{self.name}", f"--hostname={self.name}",
            f"--network-namespace-path={netns}", "--capability=CAP_NET_ADMIN",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
        ]
        with open(self.console, "ab") as console:
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                env={**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},
                start_new_session=True,
                preexec_fn=self._join_own_cgroup,
            )

    def _join_own_cgroup(self) -> None:
        """Each container needs cgroups of its own: with --keep-unit nspawn uses the caller's."""
        for hierarchy in CGROUPS:
            if hierarchy.is_dir():
                group = hierarchy / "mailstack-lab" / self.name
                group.mkdir(parents=True, exist_ok=True)
                (group / "cgroup.procs").write_text(str(os.getpid()))

    def stop(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGTERM)  # nspawn turns this into a clean poweroff
        self.stop_processes(grace=15)
        # nspawn's mount propagation folder (a file or a folder, left behind after a crash).
        shutil.rmtree(Path("/run/systemd/nspawn/propagate", f"mailstack-{self.name}"), ignore_errors=True)
        Path("/run/systemd/nspawn/propagate", f"mailstack-{self.name}").unlink(missing_ok=True)
        unmount_below(self.root)
        network.namespace_down(self.name)
        for hierarchy in CGROUPS:
            group = hierarchy / "mailstack-lab" / self.name
            if group.is_dir():
                for folder, _, _ in sorted(os.walk(group), key=lambda entry: len(entry[0]), reverse=True):
                    remove_cgroup(Path(folder))


def remove_cgroup(folder: Path, patience: float = 30.0) -> None:
    """Remove an empty cgroup; the kernel may call it busy for a moment after its last process
    ended (a journald writing out its files took more than 5 s once), so this waits up to
    ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                raise LabError(f"cannot remove the cgroup {folder}: {error.strerror}") from None
            time.sleep(0.2)


class VirtualMachine(LabHost):
    """A QEMU guest (TCG) booted straight into Debian's cloud kernel, on a tap in the bridge."""

    kind = "qemu"
    link_prefix = "vt"

    def __init__(self, name, address, identity, memory: int, disks: int, disk_size: int, release: str = images.SUITE,
                 groups: tuple[str, ...] = (), zfs: bool = False):
        super().__init__(name, address, identity, release)
        self.memory, self.disks, self.disk_size, self.groups, self.zfs = memory, disks, disk_size, groups, zfs
        self.mac = "52:54:00:" + ":".join(f"{byte:02x}" for byte in address.ip.packed[1:])

    def pids(self) -> list[int]:
        return processes(f"mailstack-{self.name}")

    def image(self) -> Path:
        return images.vm_image(self.release, self.groups, self.zfs)

    def _fingerprint(self) -> str:
        """Its disks and ZFS too: a guest with other disks, or made from the other image, is a new guest."""
        return hashlib.sha256(f"{super()._fingerprint()} {self.disks}x{self.disk_size} {self.zfs}".encode()).hexdigest()

    def own_initramfs(self, image_initramfs: Path) -> Path:
        """The initramfs on the guest's own root disk, as a real machine's bootloader would load
        it, read without mounting (a crashed guest's disk too): QEMU's direct kernel boot takes
        it from a file here. The guest's update-initramfs puts its arrays' names there
        (mdadm.conf); the image's would assemble them under other names."""
        copy = self.state / "initrd.img"
        inside = "/" + os.readlink(image_initramfs)  # boot/initrd.img-<the image's kernel>
        copy.unlink(missing_ok=True)
        # -c: without the allocation bitmaps, which a crashed guest's disk may have left unwritten
        run("debugfs", "-c", "-R", f"dump {inside} {copy}", self.state / "root.raw")
        if not copy.exists() or not copy.stat().st_size:
            raise LabError(f"{self.name}: no {inside} on its root disk")
        return copy

    @property
    def kept(self) -> Path:
        """Where the guest's disks wait while a fresh guest stands in (tests/lab/faults.py: ``fresh_guest``)."""
        return self.state.with_name(f"{self.name}.kept")

    def set_aside(self) -> None:
        """Keep the stopped guest's disks aside; the next start makes a fresh guest."""
        shutil.rmtree(self.kept, ignore_errors=True)
        self.state.rename(self.kept)

    def give_back(self) -> None:
        """The kept disks back in place of the fresh guest's, if any were set aside."""
        if self.kept.exists():
            self.stop()
            shutil.rmtree(self.state, ignore_errors=True)
            self.kept.rename(self.state)

    def start(self, bridge: str) -> None:
        if not self.is_prepared():
            self.stop()
            self._make_disks()
        tap = network.tap_up(self.name, bridge)
        if not self.is_running():
            self._boot(tap)

    def _make_disks(self) -> None:
        """The guest's root disk (the VM image plus its identity) and its empty extra disks."""
        shutil.rmtree(self.state, ignore_errors=True)
        tree = self.state / "tree"
        upper, work = self.state / "upper", self.state / "work"
        for folder in (tree, upper, work):
            folder.mkdir(parents=True)
        run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={self.image()},upperdir={upper},workdir={work}", tree)
        try:
            self.write_identity(tree)
            (tree / "etc/systemd/network/10-lab.network").write_text(
                f"[Match]\nMACAddress={self.mac}\n\n[Network]\nAddress={self.address}\n"
            )
            run("mkfs.ext4", "-q", "-L", "root", "-d", tree, self.state / "root.raw", "3G")
        finally:
            unmount_below(tree)
        shutil.rmtree(upper)
        shutil.rmtree(work)
        for index in range(1, self.disks + 1):
            with open(self.state / f"disk{index}.raw", "wb") as disk:
                disk.truncate(self.disk_size)
        self.mark_prepared()

    def _boot(self, tap: str) -> None:
        kernel, initrd = images.kernel(self.image())
        initrd = self.own_initramfs(initrd)
        drives = [self.state / "root.raw", *(self.state / f"disk{i}.raw" for i in range(1, self.disks + 1))]
        command = [
            "qemu-system-x86_64", "-name", f"mailstack-{self.name}",
            "-accel", "tcg,thread=multi", "-smp", "2", "-m", f"{self.memory >> 20}M",
            "-nodefaults", "-display", "none", "-serial", f"file:{self.console}",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0",
            *[arg for drive in drives for arg in ("-drive", f"file={drive},format=raw,if=virtio")],
            "-netdev", f"tap,id=lan,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=lan,mac={self.mac}",
            "-device", "i6300esb", "-action", "watchdog=reset",  # a server's hardware watchdog (SBD feeds it)
            "-monitor", f"unix:{self.state / 'monitor.sock'},server,nowait",
            "-daemonize",
        ]
        run(*command)

    def stop(self) -> None:
        """A clean shutdown by the ACPI power button, pressed every 5 s for 30 s: a guest still
        booting has nothing that listens to it yet, and would ignore a single press."""
        monitor = self.state / "monitor.sock"
        for _ in range(6):
            if not (self.is_running() and monitor.exists()):
                break
            try:
                self._monitor(monitor, "system_powerdown")
            except OSError:
                break
            if self.exited_within(5):
                break
        self.stop_processes(grace=0)
        monitor.unlink(missing_ok=True)
        network.tap_down(self.name)


    @staticmethod
    def _monitor(monitor: Path, command: str) -> None:
        """Give QEMU's human monitor one command. It reads nothing before its prompt, and
        drops a command whose sender hangs up before the echo: wait for both."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(5)
            connection.connect(str(monitor))
            _read_prompt(connection)
            connection.sendall(f"{command}\n".encode())
            _read_prompt(connection)


def _read_prompt(connection: socket.socket) -> None:
    received = b""
    while not received.endswith(b"(qemu) "):
        chunk = connection.recv(4096)
        if not chunk:
            return
        received += chunk


def raise_if_failed(host: LabHost) -> None:
    if not host.is_running():
        raise LabError(f"{host.name} stopped while booting; {host.console} ends with: {console_tail(host)}")


def console_tail(host: LabHost, lines: int = 5) -> str:
    """The last lines a host wrote to its console, without the terminal's control sequences
    (a guest made afresh for a test takes its console with it when it goes)."""
    if not host.console.exists():
        return "(nothing)"
    text = TERMINAL_CONTROL.sub("", host.console.read_text(errors="replace")).replace("\r", "\n")
    return " / ".join([line.strip() for line in text.splitlines() if line.strip()][-lines:])
