"""Dovecot: IMAP, LMTP, SASL for Postfix, quotas with quota-status, Sieve and ManageSieve,
and dsync replication between the mx hosts."""

from pyinfra.api import deploy
from pyinfra.operations import files, server

from deploys.common import configured_service, system_account
from mailstack import capacity, certificates, mailboxes, migration, services
from mailstack.component import MAIL, Component, ManagedFile, Target, after_the_network, verify_drop_ins
from operations.components import cluster_config

VMAIL_UID = 5000  # the same on every mx host, so replicated mailboxes keep their owner
SYSCTL = "/etc/sysctl.d/60-mailstack-mx.conf"
# Each limit of the file only raised, never lowered; in the lab's containers the kernel's
# limits are the lab machine's, read-only here, and `mailstack lab up` raises them.
RAISE = (
    f"awk -F ' *= *' '/^[a-z]/ {{print $1, $2}}' {SYSCTL} | while read -r key wanted; do"
    ' [ "$(sysctl -n "$key")" -ge "$wanted" ] || sysctl -q -w "$key=$wanted" || exit 1; done'
)


@deploy("Dovecot")
def dovecot():
    system_account("vmail", VMAIL_UID, "/var/vmail")
    files.directory(name="Create /var/vmail", path="/var/vmail", user="vmail", group="vmail", mode="750")
    settings = configured_service(DOVECOT, "dovecot", "Dovecot")
    server.shell(name="Allow an inotify instance per IMAP session", commands=[RAISE], _if=settings.did_change)
    # A sync that ran while a peer was starting or reloading stays marked failed until the
    # replicator retries it, 5 minutes on. Once every mx host runs its new settings (pyinfra
    # runs an operation on every host before the next), replicate every mailbox again.
    if cluster_config().mailbox_replication == "dsync":
        server.shell(
            name="Replicate every mailbox with the peers", commands=["doveadm replicator replicate -f '*'", SETTLE],
            _if=settings.did_change,
        )


DSYNC_IO_TIMEOUT = 30  # seconds: dsync's -T, Dovecot's own default being 600

# Two hosts syncing one mailbox from both ends at once can fail it (a new cluster's first
# deploy did), and it would wait 5 minutes for its retry: ask again for each failed mailbox
# until none is queued, failed or still syncing (the replicator clears a mailbox's priority
# when its sync starts, and marks it failed only when the sync ends), for 2 minutes at most;
# what still fails, status and the alerts report.
SETTLE = (
    "for attempt in $(seq 60); do status=$(doveadm -f tab replicator status '*' | tail -n +2);"
    " failed=$(echo \"$status\" | awk -F '\\t' '$6 == \"y\" {print $1}');"
    " queued=$(echo \"$status\" | awk -F '\\t' '$2 != \"none\" {print $1}');"
    " syncing=$(doveadm -f tab replicator dsync-status | tail -n +2 | awk -F '\\t' '$1 != \"\" {print $1}');"
    " [ -z \"$failed$queued$syncing\" ] && break;"
    " echo \"$failed\" | xargs -r -n 1 doveadm replicator replicate -f; sleep 2; done"
)


def values(target: Target) -> dict:
    config = target.config
    return {
        "vmail_uid": VMAIL_UID,
        "special_folders": mailboxes.SPECIAL_FOLDERS,
        "tls": certificates.paths(config),
        "mozilla_intermediate_ciphers": certificates.MOZILLA_INTERMEDIATE_CIPHERS,
        "lb_addresses": services.addresses(config, "lb"),
        "replication_port": services.REPLICATION_PORT,
        "dsync_io_timeout": DSYNC_IO_TIMEOUT,
        "peers": [name for name in config.hosts_in("mx") if name != target.name],
        "doveadm_password": target.named_secret("doveadm.pass"),
        "metrics_port": services.DOVECOT_METRICS_PORT,
        "capacity": capacity.dovecot(config),
        "migration_master": master_login(target) if config.migration else None,
        "migration_proxied": migration.PROXIED if config.migration else None,
        "old_server": migration.source(config) if config.migration else None,
        "routes": migration.routes(config, {}) if config.migration else None,
    }


def master_login(target: Target) -> str:
    """The line of ``master-users`` for the migration's verification (docs/migration.md)."""
    password = target.named_secret(migration.MASTER_PASSWORD)
    return f"{migration.MASTER_USER}:{migration.master_hash(password)}"


def managed_files(config) -> tuple[ManagedFile, ...]:
    """Dovecot's own files, its start after the network, the replicator's start on a dsync pair,
    and the migration's routes file while there is one."""
    replicator = (REPLICATOR_START,) if config.mailbox_replication == "dsync" else ()
    return FILES + (AFTER_THE_NETWORK,) + replicator + migration.route_file(config, migration.PROXIED)


FILES = (
    ManagedFile("/etc/dovecot/dovecot.conf"),
    ManagedFile("/etc/dovecot/users", mode="640", group="dovecot"),
    ManagedFile("/etc/dovecot/replication.conf", mode="640", group="dovecot"),
    ManagedFile("/etc/dovecot/master-users", mode="640", group="dovecot"),
    ManagedFile(SYSCTL),
)
REPLICATOR_START = ManagedFile("/etc/systemd/system/dovecot.service.d/mailstack.conf")
AFTER_THE_NETWORK = after_the_network("dovecot")

DOVECOT = Component(
    dovecot,
    MAIL,
    files=managed_files,
    check="doveconf -n -c {root}/etc/dovecot/dovecot.conf >/dev/null && " + verify_drop_ins((AFTER_THE_NETWORK.path,)),
    values=values,
    packages=("dovecot-core", "dovecot-imapd", "dovecot-lmtpd", "dovecot-sieve", "dovecot-managesieved"),
)
