"""The lab's private network: one bridge with this machine's address, one network
namespace per container (a veth pair into it), one tap per QEMU guest.

Nothing routes or NATs: lab hosts reach only each other and this machine's bridge address,
even on a machine that forwards between its other interfaces.
"""

import ipaddress
from pathlib import Path

from .system import LabError, run

NETNS = Path("/run/netns")


def _exists(link: str) -> bool:
    return Path("/sys/class/net", link).exists()


def check_subnet_free(bridge: str, address: ipaddress.IPv4Interface) -> None:
    """Refuse a subnet some other interface of this machine already uses."""
    for line in run("ip", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        link, family, cidr = fields[1], fields[2], fields[3]
        if family.startswith("inet") and link != bridge:
            used = ipaddress.ip_interface(cidr).network
            if used.overlaps(address.network):
                raise LabError(
                    f"the lab subnet {address.network} is already used by {link} ({cidr}); "
                    "choose another lab.address in the lab inventory"
                )


def bridge_up(bridge: str, address: ipaddress.IPv4Interface) -> None:
    if not _exists(bridge):
        run("ip", "link", "add", bridge, "type", "bridge")
    no_forwarding_from(bridge)
    if str(address) not in run("ip", "-o", "addr", "show", "dev", bridge).stdout:
        run("ip", "addr", "add", str(address), "dev", bridge)
    run("ip", "link", "set", bridge, "up")


def no_forwarding_from(link: str) -> None:
    """Drop what arrives on ``link`` for elsewhere, whatever ``net.ipv4.ip_forward`` says.

    The kernel asks the incoming interface's own ``forwarding`` switch. Writing the global
    switch later (libvirt does, for a NAT network) resets it: ``up`` sets it again.
    """
    Path("/proc/sys/net/ipv4/conf", link, "forwarding").write_text("0\n")


def bridge_down(bridge: str) -> None:
    if _exists(bridge):
        run("ip", "link", "del", bridge, check=False)  # it may vanish between the look and the delete
    if _exists(bridge):
        raise LabError(f"could not delete the bridge {bridge}")


def link_name(prefix: str, host: str) -> str:
    """Interface names are at most 15 characters."""
    return f"{prefix}-{host}"[:15]


def namespace_up(name: str, bridge: str, address: ipaddress.IPv4Interface) -> Path:
    """A network namespace whose ``eth0`` is a veth into the bridge, with a static address."""
    path = NETNS / name
    if not path.exists():
        run("ip", "netns", "add", name)
    outside = link_name("ve", name)
    if not _exists(outside):
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "link", "set", outside, "master", bridge, "up")
    inside = ["ip", "-n", name]
    if str(address) not in run(*inside, "-o", "addr", "show", "dev", "eth0").stdout:
        run(*inside, "addr", "add", str(address), "dev", "eth0")
    run(*inside, "link", "set", "lo", "up")
    run(*inside, "link", "set", "eth0", "up")
    return path


def namespace_down(name: str) -> None:
    """Deleting the namespace deletes its veth pair too (a moment later)."""
    if (NETNS / name).exists():
        run("ip", "netns", "del", name)
    outside = link_name("ve", name)
    if _exists(outside):
        run("ip", "link", "del", outside, check=False)


def set_link(link: str, up: bool) -> None:
    """Plug or pull a lab host's cable (its link into the bridge)."""
    run("ip", "link", "set", link, "up" if up else "down")


def tap_up(name: str, bridge: str) -> str:
    tap = link_name("vt", name)
    if not _exists(tap):
        run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
    run("ip", "link", "set", tap, "master", bridge, "up")
    return tap


def tap_down(name: str) -> None:
    tap = link_name("vt", name)
    if _exists(tap):
        run("ip", "link", "del", tap)
