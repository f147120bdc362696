"""A component's check, run by the tools of the Debian release its host runs.

Dovecot 2.3's ``doveconf`` cannot read a 2.4 configuration, nor the other way round, so the
files of a host are checked by its own release's tools: this machine's when it runs that
release, otherwise those in the lab's base image of the release (which carries every
component's packages), entered through an overlay that leaves the image unwritten.

Either way the check runs in a network namespace of its own in which the host's interface
exists with its address (keepalived refuses an unknown interface, Corosync a node list
without this host's address), as it would on the host.
"""

import shlex
import subprocess
from pathlib import Path

from .component import Component
from .config import Config
from .lab import images

MERGED = "/mnt/merged"
"""Where the image appears, inside the check's own mount namespace."""


def this_release() -> str:
    """This machine's Debian codename ("" when it is not Debian)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    return ""


def check(component: Component, config: Config, host_name: str, root: Path) -> subprocess.CompletedProcess:
    """Run ``component``'s check on its files staged under ``root`` for ``host_name``."""
    release = config.release_of(host_name)
    interface = shlex.quote(config.hosts[host_name].interface)
    address = shlex.quote(str(config.hosts[host_name].address))
    script = (f"ip link set lo up && ip link add {interface} type veth peer name stand-in"
              f" && ip address add {address} dev {interface} && ")
    if release == this_release():
        script += component.check.format(root=root)
    else:
        script += _in_image(images.base_image(release), root, component.check.format(root="/check"))
    isolated = ["unshare", "--net", "--mount", "--fork", "sh", "-ec", script]
    return subprocess.run(isolated, capture_output=True, text=True)


def _in_image(image: Path, root: Path, command: str) -> str:
    """Shell that runs ``command`` chrooted into a writable overlay of ``image``, with
    ``root`` at /check; the check's mount namespace discards it all."""
    mounts = [
        "mount -t tmpfs tmpfs /mnt && mkdir /mnt/upper /mnt/work /mnt/merged",
        f"mount -t overlay overlay -o lowerdir={shlex.quote(str(image))},upperdir=/mnt/upper,workdir=/mnt/work"
        f" {MERGED}",
        f"mkdir {MERGED}/check && mount --bind {shlex.quote(str(root))} {MERGED}/check",
        f"mount -t proc proc {MERGED}/proc && mount --rbind /dev {MERGED}/dev",
        # A host has SSH host keys (sshd -t wants one); the images leave them to each host.
        f"chroot {MERGED} ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key",
    ]
    return " && ".join([*mounts, f"chroot {MERGED} sh -ec {shlex.quote(command)}"])
