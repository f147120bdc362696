"""The public mail services the cluster offers through its virtual IP.

HAProxy's frontends and health checks, the backends' PROXY listeners and the tests all
read this one list.
"""

from dataclasses import dataclass
from typing import Literal

from .config import Config


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    protocol: Literal["smtp", "imap", "sieve"]
    """What HAProxy's health check speaks to the backend."""
    implicit_tls: bool
    """TLS from the first byte (465, 993): health checks speak TLS too."""
    limit: str
    """Its class in ``firewall.rate_limits``."""


SERVICES = (
    Service("smtp", 25, "smtp", False, "smtp"),
    Service("submissions", 465, "smtp", True, "submission"),
    Service("submission", 587, "smtp", False, "submission"),
    Service("imap", 143, "imap", False, "imap"),
    Service("imaps", 993, "imap", True, "imap"),
    Service("sieve", 4190, "sieve", False, "sieve"),
)
REPLICATION_PORT = 12345  # Dovecot's doveadm listener, for dsync between the mx hosts
# Run by Pacemaker where the mail is, on a Debian 13 mx pair; started in this order (stopped in
# the other): Dovecot's LMTP answers before Postfix delivers the queue it took over, else Postfix
# would defer every message in it for 5 minutes (its minimal_backoff_time).
CLUSTERED = ("dovecot", "postfix")
# Postfix's queue on a Debian 13 pair: a folder of the replicated /var/vmail, mounted on its spool.
QUEUE_FOLDER = ".postfix-queue"
DRBD_PORT = 7789  # DRBD's replication of /var/vmail between the mx hosts (Debian 13)
COROSYNC_PORT = 5405  # Corosync's membership (knet, UDP) between the mx hosts (Debian 13)
QNETD_PORT = 5403  # corosync-qnetd on the quorum host, the third vote of a Debian 13 pair
STATS_PORT = 8404  # HAProxy's stats page and Prometheus metrics, on localhost (metrics also for the mon hosts)
NODE_EXPORTER_PORT = 9100  # every host's metrics, for the mon hosts only
PROMETHEUS_PORT = 9090  # Prometheus on the mon hosts, for the admin networks
DOVECOT_METRICS_PORT = 9900  # Dovecot's OpenMetrics on the mx hosts, for the mon hosts only
POSTFIX_EXPORTER_PORT = 9154  # Postfix's queues and log on the mx hosts, for the mon hosts only
REDIS_EXPORTER_PORT = 9121  # Rspamd's Redis on the mx hosts, for the mon hosts only
# What the mon hosts scrape on each mx host besides the node exporter: Prometheus job -> port.
MX_METRICS = {"dovecot": DOVECOT_METRICS_PORT, "postfix": POSTFIX_EXPORTER_PORT, "redis": REDIS_EXPORTER_PORT}
TEXTFILES = "/var/lib/prometheus/node-exporter"  # metrics files the node exporter serves, on every host
MTA_STS_PORT = 443  # HTTPS on the virtual IP: the lb hosts serve each domain's MTA-STS policy
HAPROXY_PEERS_PORT = 10000  # HAProxy's peers share which backend is active, between the lb hosts


def listen(address, port: int) -> str:
    """``address:port``, with IPv6 addresses in brackets."""
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def addresses(config: Config, group: str) -> list[str]:
    return [str(config.hosts[name].address) for name in config.hosts_in(group)]


def backend_state_command(backend: str, state: Literal["ready", "drain", "maint"]) -> str:
    """Shell command for an lb host: set mx host ``backend`` to ``state`` in every service.

    ``drain`` lets open sessions finish and sends no new ones; ``maint`` also stops health
    checks; ``ready`` takes the host back. HAProxy prints nothing when all went well.
    """
    commands = ";".join(f"set server {service.name}/{backend} state {state}" for service in SERVICES)
    return f"echo '{commands}' | socat stdio /run/haproxy/admin.sock"


def postfix_units(release: str) -> str:
    """Postfix's units for systemctl. On Debian 12 postfix.service only passes a stop on to the
    instance postfix@-, and returns before that instance has stopped delivering, so both are
    named; Debian 13 runs Postfix in postfix.service, and starting postfix@- fails there."""
    return "postfix@- postfix" if release == "bookworm" else "postfix"
