"""Clients under failure: a submission loop that counts what was accepted, and a probe that
times how long the virtual IP stops answering. The failover tests and ``bench/failover.py``
both use them.
"""

import smtplib
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .mailcheck import Mx, message

CONNECT_TIMEOUT = 2.0


@dataclass
class SubmitLoop:
    """Submits alice -> bob through ``mx`` until stopped, one message per connection; after an
    error it reconnects at once, as mail clients and servers retry. Every message that got a
    250 reply is in ``accepted`` (subject, time accepted)."""

    mx: Mx
    accepted: list[tuple[str, float]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SubmitLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            mail = message(self.mx.user("alice"), self.mx.user("bob"), subject=f"loop {time.time_ns()} {number}")
            try:
                self.mx.send("alice", mail, timeout=CONNECT_TIMEOUT * 3)
            except (OSError, smtplib.SMTPException) as error:
                self.errors.append((time.monotonic(), f"{type(error).__name__}: {error}"))
                time.sleep(0.05)
                continue
            self.accepted.append((mail["Subject"], time.monotonic()))

    def outage(self, since: float) -> float:
        """Seconds after ``since`` without an accepted message: from ``since`` to the first
        message accepted after the last error that followed it (0 if nothing failed)."""
        failures = [moment for moment, _ in self.errors if moment >= since]
        if not failures:
            return 0.0
        after = [moment for _, moment in self.accepted if moment > failures[-1]]
        return (after[0] if after else float("inf")) - since


def answers(address: str, port: int) -> bool:
    """The service at ``address`` sends its SMTP greeting. A short connect timeout: a SYN lost
    to a dead host is retried only after a second, so a fresh attempt finds a new owner sooner."""
    try:
        with socket.create_connection((address, port), timeout=0.3) as connection:
            connection.settimeout(CONNECT_TIMEOUT)
            return connection.recv(4).startswith(b"220")
    except OSError:
        return False


def time_until_answer(address: str, port: int, since: float, limit: float = 60) -> float:
    """Seconds from ``since`` until ``address`` answers again, probing every 50 ms."""
    while not answers(address, port):
        if time.monotonic() - since > limit:
            raise TimeoutError(f"{address}:{port} did not answer within {limit} s")
        time.sleep(0.05)
    return time.monotonic() - since


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


def backends_up(lab, lb: str) -> set[str]:
    try:
        stats = lab.run(lb, "echo 'show stat' | socat stdio /run/haproxy/admin.sock", timeout=5).stdout
    except subprocess.TimeoutExpired:
        return set()
    rows = [line.split(",") for line in stats.splitlines()[1:] if line]
    return {row[1] for row in rows if row[0] == "submission" and row[1] in lab.config.hosts and row[17] == "UP"}


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
        lab.set_link(host.name, up=True)
    for name in lab.config.hosts_in("lb"):
        lab.run(name, "systemctl start haproxy keepalived")
    wait_for(lambda: cluster_whole(lab), limit, "the cluster whole again")

