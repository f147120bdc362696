"""The replication watchdog on mx hosts with a peer. Dovecot 2.3's replication can leave a
mailbox behind on the peer in two ways (docs/ha.md):

- a sync that failed (its TLS stream stalled until the I/O timeout ``-T``, which the lab
  showed about once in 300 syncs under load, or the peer was restarting) is retried by the
  replicator only 5 minutes on, unless the mailbox changes again;
- a sync whose connection stalls before its stream starts (TLS handshake, login: doveadm has
  no timeout there) is waited for by the replicator for ever, and that mailbox is synced no
  more until Dovecot restarts.

Every ``EVERY`` seconds ``mailstack-replication-watchdog`` kills a sync whose connection to a
peer has carried nothing for twice the I/O timeout (a live stream carries something within
it, or dsync ends it itself), then asks the replicator again for each mailbox whose last sync
failed and began at least the I/O timeout ago, while every peer answers. Installed only where
an mx host has a peer.
"""

from pyinfra.api import deploy

from deploys import dovecot
from deploys.common import configured_service
from mailstack import services
from mailstack.component import MAIL, Component, ManagedFile, Target, verify_units

SCRIPT = "/usr/local/sbin/mailstack-replication-watchdog"
UNIT = "mailstack-replication-watchdog"  # its service; the timer that runs it is TIMER
TIMER = f"{UNIT}.timer"
EVERY = 15  # seconds


@deploy("Replication watchdog")
def replication_watchdog():
    configured_service(REPLICATION_WATCHDOG, TIMER, "the replication watchdog", restarted=True)


def values(target: Target) -> dict:
    config = target.config
    return {
        "every": EVERY,
        "idle": 2 * dovecot.DSYNC_IO_TIMEOUT,
        "retry_after": dovecot.DSYNC_IO_TIMEOUT,
        "port": services.REPLICATION_PORT,
        "peers": [config.host_fqdn(name) for name in config.hosts_in("mx") if name != target.name],
    }


def replicated(config) -> bool:
    return config.mailbox_replication == "dsync"


REPLICATION_WATCHDOG = Component(
    replication_watchdog,
    MAIL,
    files=(
        ManagedFile(SCRIPT, mode="755"),
        ManagedFile(f"/etc/systemd/system/{UNIT}.service"),
        ManagedFile(f"/etc/systemd/system/{TIMER}"),
    ),
    check=f"bash -n {{root}}{SCRIPT} && " + verify_units(SCRIPT, UNIT),
    values=values,
    when=replicated,
)
