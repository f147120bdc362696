"""Mail clients for the lab: Python's own smtplib and imaplib, TLS verified by name.

``mailstack lab login`` proves a round trip with them before it tells how to log in, and
the end-to-end tests use them; users log in with the passwords of ``lab.passwords``.
Clients connect to the cluster's virtual IP, as real ones do, and check the certificate
against the public mail name, trusting pebble's current root. To reach one backend in
particular, ``pinned`` takes the others out of HAProxy's rotation.
"""

import imaplib
import smtplib
import ssl
import time
import urllib.request
import uuid
from contextlib import contextmanager
from email.message import EmailMessage

from ..services import backend_state_command


def pebble_root(lab) -> str:
    """pebble's current root (it makes a new one at each start), fetched over HTTPS trusting the lab CA."""
    ns = lab.config.hosts[lab.config.hosts_in("ns")[0]].address
    context = ssl.create_default_context(cafile=str(lab.ca[0]))
    context.check_hostname = False  # addressed by IP; the chain is still verified
    return urllib.request.urlopen(f"https://{ns}:15000/roots/0", context=context, timeout=10).read().decode()


def cluster(lab, trusted: str, backend: str | None = None) -> "Mx":
    """The cluster as clients see it: its virtual IP and public name (``backend``: while pinned to it)."""
    config = lab.config
    return Mx(str(config.cluster.virtual_ip), config.cluster.mail_hostname, trusted, config.domains[0].name,
              config.lab.passwords, backend)


@contextmanager
def pinned(lab, backend: str):
    """Every lb host sends new connections only to ``backend``: the other mx hosts are put in
    maintenance in HAProxy (as an operator drains a node) until the block ends."""
    others = [name for name in lab.config.hosts_in("mx") if name != backend]

    def set_state(state: str) -> None:
        command = "; ".join(backend_state_command(name, state) for name in others)
        for lb in lab.config.hosts_in("lb"):
            result = lab.run(lb, command)
            if result.returncode != 0 or result.stdout.strip():
                raise OSError(f"{lb}: HAProxy refused '{state}' for {others}: {result.stdout}{result.stderr}")

    set_state("maint")
    try:
        yield
    finally:
        set_state("ready")


def round_trip(lab, backend: str) -> float:
    """Through the virtual IP, pinned to ``backend``: submit alice -> bob (587), read it (993); seconds."""
    mx = cluster(lab, pebble_root(lab), backend)
    with pinned(lab, backend):
        started = time.monotonic()
        mail = message(mx.user("alice"), mx.user("bob"))
        mx.send("alice", mail)
        mx.wait_for("bob", mail["Subject"])
        return time.monotonic() - started


def tls_context(trusted: str, server_name: str) -> ssl.SSLContext:
    """Verify certificates against ``trusted`` (PEM) and the name ``server_name``, whatever address we dial."""
    context = ssl.create_default_context(cadata=trusted)
    wrap = context.wrap_socket
    context.wrap_socket = lambda sock, server_hostname=None, **kwargs: wrap(sock, server_hostname=server_name, **kwargs)
    return context


def message(sender: str, recipient: str, subject: str | None = None, body: str = "hello\n") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, recipient
    mail["Subject"] = subject or f"lab test {uuid.uuid4().hex[:12]}"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@mailstack.test>"
    mail.set_content(body)
    return mail


class Mx:
    """The mail service at ``address`` under the name ``name``, as a client sees it; ``host`` is
    the backend that serves it when the client is pinned to one."""

    def __init__(self, address: str, name: str, trusted: str, domain: str, passwords: dict[str, str],
                 host: str | None = None):
        self.address, self.name, self.domain, self.host = address, name, domain, host
        self.passwords = passwords
        self.context = tls_context(trusted, name)

    def user(self, local: str) -> str:
        return f"{local}@{self.domain}"

    def submission(self, login: str | None = None, timeout: float = 20) -> smtplib.SMTP:
        """Port 587 after STARTTLS, logged in as ``login`` when given."""
        smtp = smtplib.SMTP(self.address, 587, local_hostname="client.lab.test", timeout=timeout)
        smtp.starttls(context=self.context)
        smtp.ehlo("client.lab.test")
        if login:
            smtp.login(self.user(login), self.passwords[self.user(login)])
        return smtp

    def submissions(self) -> smtplib.SMTP_SSL:
        return smtplib.SMTP_SSL(self.address, 465, local_hostname="client.lab.test", context=self.context, timeout=20)

    def smtp(self) -> smtplib.SMTP:
        """Port 25, as another MTA; postscreen wants the client to wait for the greeting."""
        return smtplib.SMTP(self.address, 25, local_hostname="client.lab.test", timeout=30)

    def send(self, login: str, mail: EmailMessage, timeout: float = 20) -> None:
        with self.submission(login, timeout) as smtp:
            smtp.send_message(mail)

    def imap(self, login: str) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(self.address, 993, ssl_context=self.context, timeout=20)
        client.login(self.user(login), self.passwords[self.user(login)])
        return client

    def wait_for(self, login: str, subject: str, folder: str = "INBOX", timeout: float = 30) -> bytes:
        """The message with ``subject`` in ``folder`` of ``login``, once delivered."""
        deadline = time.monotonic() + timeout
        with self.imap(login) as client:
            while True:
                status, _ = client.select(f'"{folder}"', readonly=True)
                if status == "OK":
                    _, found = client.search(None, "SUBJECT", f'"{subject}"')
                    if found[0]:
                        _, data = client.fetch(found[0].split()[-1], "(RFC822)")
                        return data[0][1]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no message {subject!r} in {login}'s {folder} after {timeout} s")
                time.sleep(0.5)
