"""Backups on the mx hosts: ``mailstack-backup`` puts /var/vmail and the host's own state
(``mailstack.backup.STATE_PATHS``) into the cluster's encrypted BorgBackup repository on the
backup host, prunes it by ``backup.retention`` and writes how it went for the node exporter.
A timer runs it every ``backup.every_hours`` on the standby mx host; on the other, half an
hour later, only when the repository holds no archive of the last two periods (the standby is
down or failing). The standby also checks the repository every ``backup.check_every_days``.
Installed only where a backup host exists.
"""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from deploys import node_exporter
from deploys.common import configured_service
from mailstack import backup as backups
from mailstack.component import MAIL, Component, ManagedFile, Target, verify_units
from operations.components import cluster_config

BACKUP_TIMER, CHECK_TIMER = "mailstack-backup.timer", "mailstack-backup-check.timer"
CACHE = "/var/lib/mailstack/borg"
BORG_SSH = "/usr/local/sbin/mailstack-borg-ssh"  # BORG_RSH: ssh with a wide stderr pipe


@deploy("Backups")
def backup():
    files.directory(name="Create borg's cache folder", path=CACHE, mode="700")
    standby = host.name == backups.standby(cluster_config())
    timers = (BACKUP_TIMER, CHECK_TIMER) if standby else (BACKUP_TIMER,)
    configured_service(BACKUP, timers, "BorgBackup", restarted=True)
    if not standby:  # one host reads the whole repository back
        systemd.service(name="Leave the repository check to the standby", service=CHECK_TIMER, running=False,
                        enabled=False)


def values(target: Target) -> dict:
    config = target.config
    return {
        "passphrase": target.named_secret(backups.PASSPHRASE),
        "ssh_key": target.named_secret(backups.SSH_KEY),
        "known_hosts": backups.known_host_lines(config, review=target.review),
        "repository": backups.repository_url(config),
        "backup_host": backups.backup_host(config),
        "standby": target.name == backups.standby(config),
        "on_drbd": config.mailbox_replication == "drbd",
        "vmail_dataset": backups.vmail_dataset(config, target.name),
        "state_paths": backups.STATE_PATHS,
        "archives": backups.MAIL_ARCHIVES,
        "state_archives": backups.STATE_ARCHIVES,
        "settings": backups.SETTINGS,
        "cache": CACHE,
        "borg_ssh": BORG_SSH,
        "textfiles": node_exporter.TEXTFILES,
        "script": backups.SCRIPT,
    }


def wanted(config) -> bool:
    return bool(config.hosts_in("backup"))


BACKUP = Component(
    backup,
    MAIL,
    files=(
        ManagedFile(f"{backups.SETTINGS}/passphrase", mode="600"),
        ManagedFile(f"{backups.SETTINGS}/id_ed25519", mode="600"),
        ManagedFile(f"{backups.SETTINGS}/known_hosts"),
        ManagedFile(f"{backups.SETTINGS}/borg.env"),
        ManagedFile(backups.SCRIPT, mode="755"),
        ManagedFile(BORG_SSH, mode="755"),
        ManagedFile("/etc/systemd/system/mailstack-backup.service"),
        ManagedFile(f"/etc/systemd/system/{BACKUP_TIMER}"),
        ManagedFile("/etc/systemd/system/mailstack-backup-check.service"),
        ManagedFile(f"/etc/systemd/system/{CHECK_TIMER}"),
    ),
    check=(
        f"bash -n {{root}}{backups.SCRIPT} && sh -n {{root}}{backups.SETTINGS}/borg.env"
        f" && python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' {{root}}{BORG_SSH} && "
        + verify_units(backups.SCRIPT, "mailstack-backup")
    ),
    values=values,
    when=wanted,
    packages=("borgbackup",),
)
