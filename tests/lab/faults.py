"""Breaking the lab on purpose and making it whole again: a host crashed (its power cut), its
link pulled, a fresh QEMU guest standing in; where the virtual IP is; whether every lb host
sees every backend up. The failover, storage and firewall tests and ``bench/failover.py`` use it."""

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mailstack import haproxy
from mailstack.lab import Lab, network
from mailstack.lab.hosts import VirtualMachine
from mailstack.lab.system import LabError, progress


def crash(lab: Lab, name: str) -> None:
    """Cut the power of one host: no clean shutdown of anything."""
    progress(f"crashing {name}")
    lab.host(name).crash()


def set_link(lab: Lab, name: str, up: bool) -> None:
    """Pull or plug one host's network cable."""
    network.set_link(lab.host(name).link, up)


@contextmanager
def fresh_guest(lab: Lab, name: str, zfs: bool = False) -> Iterator[None]:
    """A QEMU guest made again from the image (with ZFS, for a pool: ``zfs``), with empty disks,
    for the length of the block; then the guest as it was comes back, disks and all, as if never
    stopped."""
    host = lab.host(name)
    if not isinstance(host, VirtualMachine):
        raise LabError(f"{name} is not a QEMU guest")
    progress(f"{name}: a fresh guest stands in")
    host.stop()
    host.set_aside()
    was, host.zfs = host.zfs, zfs
    try:
        lab.start(name)
        yield
    finally:
        progress(f"{name}: the guest as it was comes back")
        host.zfs = was
        host.give_back()
        lab.start(name)


def wait_for(condition, limit: float, what: str, interval: float = 0.5) -> float:
    """Wait until ``condition()`` holds; seconds waited."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise TimeoutError(f"{what}: not within {limit} s")
        time.sleep(interval)
    return time.monotonic() - started


def vip_holder(lab) -> str | None:
    """The first lb host that says it holds the virtual IP; a host that does not answer holds nothing."""
    for name in lab.config.hosts_in("lb"):
        try:
            addresses = lab.run(name, "ip -o addr show", timeout=5).stdout
        except subprocess.TimeoutExpired:
            continue
        if f" {lab.config.cluster.virtual_ip}/" in addresses:
            return name
    return None


def backends_up(lab, lb: str, proxy: str = "submission") -> set[str]:
    """The mx hosts ``lb``'s HAProxy sends ``proxy``'s clients to."""
    try:
        stats = lab.run(lb, haproxy.SHOW_STAT, timeout=5).stdout
    except subprocess.TimeoutExpired:
        return set()
    return {server for (name, server), row in haproxy.servers(stats).items()
            if name == proxy and server in lab.config.hosts and row["status"] == "UP"}


def cluster_whole(lab) -> bool:
    """The first lb holds the address again and every lb sees every backend up."""
    mx = set(lab.config.hosts_in("mx"))
    lbs = lab.config.hosts_in("lb")
    return vip_holder(lab) == lbs[0] and all(backends_up(lab, lb) == mx for lb in lbs)


def make_whole(lab, limit: float = 180) -> None:
    """Boot what is down, plug what is pulled, start the front's services, and wait until the
    cluster is whole again."""
    for host in lab.hosts:
        if not host.is_running():
            lab.start(host.name)
        set_link(lab, host.name, up=True)
    for name in lab.config.hosts_in("lb"):
        lab.run(name, "systemctl start haproxy keepalived")
    wait_for(lambda: cluster_whole(lab), limit, "the cluster whole again")

