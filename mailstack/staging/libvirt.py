"""libvirt's daemons on a machine whose PID 1 is not systemd: started and stopped here.

Only what this module started is stopped again (a workstation's own libvirtd stays), and
libvirt's ``default`` network, which NATs to the outside, is never set to start.
"""

import grp
import os
import signal
import time
from pathlib import Path

from ..lab.system import STATE, LabError, run

DAEMONS = ("virtlogd", "libvirtd")
SOCKET = Path("/run/libvirt/libvirt-sock")
DEFAULT_NETWORK_AUTOSTART = Path("/etc/libvirt/qemu/networks/autostart/default.xml")
STARTED = STATE / "libvirt-started"
URI = "qemu:///system"
KVM = Path("/dev/kvm")


def pid(daemon: str) -> int | None:
    """The daemon's PID, when it runs."""
    try:
        pid = int(Path(f"/run/{daemon}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start() -> None:
    DEFAULT_NETWORK_AUTOSTART.unlink(missing_ok=True)
    _kvm_for_its_group()
    started = [daemon for daemon in DAEMONS if pid(daemon) is None]
    for daemon in started:
        run(daemon, "--daemon")
    if started:
        STARTED.parent.mkdir(parents=True, exist_ok=True)
        STARTED.write_text(" ".join(started))
    deadline = time.monotonic() + 30
    while run("virsh", "-c", URI, "version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError(f"libvirtd does not answer on {SOCKET} after 30 s")
        time.sleep(0.5)


def _kvm_for_its_group() -> None:
    """/dev/kvm as Debian's udev leaves it (group kvm, 0660; there is no udev here). Owned by root
    alone, libvirt finds KVM when it probes QEMU but not when it checks its cache for the QEMU
    user, so it probes again on every call: 8 to 20 s each, minutes per ``vagrant up``."""
    if KVM.exists() and "kvm" in {group.gr_name for group in grp.getgrall()}:
        os.chown(KVM, -1, grp.getgrnam("kvm").gr_gid)
        KVM.chmod(0o660)


def stop() -> None:
    """Stop the daemons ``start`` started, if it started any."""
    if not STARTED.exists():
        return
    for daemon in reversed(STARTED.read_text().split()):
        if running := pid(daemon):
            os.kill(running, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while pid(daemon) and time.monotonic() < deadline:
                time.sleep(0.1)
    STARTED.unlink()


def virsh(*arguments: str) -> list[str]:
    """A virsh command on the system connection; the non-empty lines it printed."""
    return [line.strip() for line in run("virsh", "-c", URI, *arguments).stdout.splitlines() if line.strip()]


def leftovers(prefix: str) -> list[str]:
    """Domains, networks and volumes named ``prefix``* that libvirt still holds."""
    found = [f"domain {name}" for name in virsh("list", "--all", "--name") if name.startswith(prefix)]
    found += [f"network {name}" for name in virsh("net-list", "--all", "--name") if name.startswith(prefix)]
    found += [f"volume {pool}/{name}" for pool, name in volumes() if name.startswith(prefix)]
    return found


def volumes() -> list[tuple[str, str]]:
    """(pool, volume) for every volume of every active pool."""
    return [(pool, line.split()[0]) for pool in virsh("pool-list", "--name") for line in virsh("vol-list", pool)[2:]]
