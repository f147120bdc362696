"""Clients for the lab tests and benchmarks beyond what ``mailstack lab login`` needs: a
submission loop that counts what was accepted, a probe that times how long the virtual IP
stops answering, clients at other addresses of this machine (fail2ban ignores the usual one),
and just enough ManageSieve."""

import base64
import smtplib
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from mailstack.lab.mailcheck import Mx, message
from mailstack.lab.system import run

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


@contextmanager
def spare_addresses(lab, count: int):
    """Extra addresses of this machine on the lab bridge: clients other than the usual one."""
    subnet = lab.config.lab.address.network
    taken = {lab.config.lab.address.ip, lab.config.cluster.virtual_ip} | {h.address for h in lab.config.hosts.values()}
    spare = [str(address) for address in subnet.hosts() if address not in taken][-count:]
    for address in spare:
        run("ip", "addr", "add", f"{address}/{subnet.prefixlen}", "dev", lab.config.lab.bridge)
    try:
        yield spare
    finally:
        for address in spare:
            run("ip", "addr", "del", f"{address}/{subnet.prefixlen}", "dev", lab.config.lab.bridge, check=False)


def imap_greeting(source: str, address: str, context: ssl.SSLContext, password: str | None = None,
                  user: str = "alice@mailstack.test") -> bytes:
    """The IMAPS greeting a client at ``source`` gets (b"" if none); with ``password``, then a
    login of ``user`` that fails (Dovecot answers later after each failure from one address)."""
    try:
        with socket.create_connection((address, 993), timeout=5, source_address=(source, 0)) as raw:
            with context.wrap_socket(raw) as tls:
                greeting = tls.recv(200)
                if password and greeting:
                    tls.sendall(f"a LOGIN {user} {password}\r\n".encode())
                    tls.settimeout(30)
                    tls.recv(200)
                return greeting
    except OSError:
        return b""


class ManageSieve:
    """Just enough of RFC 5804 to upload and activate a script."""

    def __init__(self, mx: Mx, login: str):
        self.socket = socket.create_connection((mx.address, 4190), timeout=20)
        self.file = self.socket.makefile("rb")
        self._until_ok()
        self._command(b"STARTTLS")
        self.socket = mx.context.wrap_socket(self.socket)
        self.file = self.socket.makefile("rb")
        self._until_ok()
        token = base64.b64encode(f"\0{mx.user(login)}\0{mx.passwords[mx.user(login)]}".encode())
        self._command(b'AUTHENTICATE "PLAIN" "' + token + b'"')

    def _until_ok(self) -> None:
        while True:
            line = self.file.readline()
            if not line or line.startswith((b"NO", b"BYE")):
                raise OSError(f"ManageSieve: {line!r}")
            if line.startswith(b"OK"):
                return

    def _command(self, command: bytes) -> None:
        self.socket.sendall(command + b"\r\n")
        self._until_ok()

    def put_and_activate(self, name: str, script: str) -> None:
        data = script.encode()
        self._command(f'PUTSCRIPT "{name}" {{{len(data)}+}}\r\n'.encode() + data)
        self._command(f'SETACTIVE "{name}"'.encode())

    def close(self) -> None:
        self.socket.sendall(b"LOGOUT\r\n")
        self.socket.close()
