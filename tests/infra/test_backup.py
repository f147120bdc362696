"""Backups, as deployed: the mx hosts hold the repository's passphrase and key 0600 and run
their backup timer (the repository check only on the standby); the backup host lets their key
run nothing but ``borg serve`` for this cluster's repository."""

import pytest

from mailstack import backup as backups

GROUPS = ["mx", "backup"]


def groups_of(host, cluster) -> list[str]:
    if not cluster.hosts_in("backup"):
        pytest.skip("no backup host: nothing is backed up")
    return cluster.hosts[host.backend.hostname].groups


def test_the_mx_hosts_hold_the_backup_secrets_for_root_only(host, cluster):
    if "mx" not in groups_of(host, cluster):
        pytest.skip("an mx host's files")
    for name in ("passphrase", "id_ed25519"):
        secret = host.file(f"{backups.SETTINGS}/{name}")
        assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600), name


def test_the_backup_timers_run_and_only_the_standby_checks(host, cluster):
    if "mx" not in groups_of(host, cluster):
        pytest.skip("an mx host's timers")
    assert host.service("mailstack-backup.timer").is_enabled and host.service("mailstack-backup.timer").is_running
    standby = host.backend.hostname == backups.standby(cluster)
    assert host.service("mailstack-backup-check.timer").is_enabled == standby


def test_the_backup_host_lets_the_key_run_borg_serve_for_this_repository_only(host, cluster):
    if "backup" not in groups_of(host, cluster):
        pytest.skip("the backup host's files")
    allowed = host.file(f"{backups.HOME}/.ssh/authorized_keys")
    assert (allowed.user, allowed.mode) == ("borg", 0o600)
    [line] = allowed.content_string.splitlines()
    options = line.split(" ")[0]
    assert options.startswith("restrict,from=")
    assert f'command="borg serve --restrict-to-repository {backups.repository_path(cluster)}"' in line
