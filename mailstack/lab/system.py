"""Running commands on the machine that hosts the lab, and checking it can."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("MAILSTACK_LAB_STATE", "/var/lib/mailstack-lab"))
MIN_FREE_BYTES = 4 << 30

TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "qemu-system-x86_64": "qemu-system-x86",
    "tinyproxy": "tinyproxy-bin",
    "mkfs.ext4": "e2fsprogs",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


class LabError(Exception):
    """Something the operator can fix; printed as one message, never as a traceback."""


def run(*command: str | Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure raise LabError with its output."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise LabError(f"`{' '.join(map(str, command))}` failed: " + " / ".join(output))
    return result


def progress(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


def preflight() -> None:
    """Refuse early, with what to do, when this machine cannot host the lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, containers, mounts): run it with sudo")
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "ID=debian" not in release:
        raise LabError("the lab runs on Debian 12 (this machine's /etc/os-release says otherwise)")
    missing = sorted({package for tool, package in TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise LabError(f"missing tools; install them with: apt-get install --no-install-recommends {' '.join(missing)}")
    STATE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(STATE).free
    if free < MIN_FREE_BYTES:
        raise LabError(f"{STATE}: only {free >> 20} MiB free; the lab needs {MIN_FREE_BYTES >> 30} GiB")


def raise_kernel_limit(key: str, wanted: int) -> None:
    """Raise a sysctl of this machine to ``wanted`` unless it is that high already: the lab's
    containers share its kernel, and cannot change it themselves."""
    path = Path("/proc/sys") / key.replace(".", "/")
    if int(path.read_text()) < wanted:
        path.write_text(f"{wanted}\n")


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    prefix = str(path)
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True)


def unmount_below(path: Path) -> None:
    for point in mounts_below(path):
        run("umount", "--lazy", point)


def processes(*needles: str) -> list[int]:
    """PIDs whose command line contains every needle (found after a crash too, unlike a PID file)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [word.decode(errors="replace") for word in argv]
            if all(any(needle == word for word in words) for needle in needles):
                found.append(int(entry.name))
    return found
