"""Replication between the mx hosts of a Debian 12 pair: Dovecot's replicator keeps every mailbox
on each of them."""

import pytest

from deploys.replication_watchdog import TIMER

GROUPS = ["mx"]


def with_a_peer(cluster) -> None:
    if len(cluster.hosts_in("mx")) < 2:
        pytest.skip("a single mx host: no peer to replicate with")
    if cluster.mailbox_replication != "dsync":
        pytest.skip("a Debian 13 pair: DRBD keeps the mailboxes alike (tests/infra/test_quorum.py)")


def test_replication_with_every_peer_succeeds(host, cluster):
    """The replicator knows every user and its last dsync with the peers did not fail."""
    with_a_peer(cluster)
    status = host.check_output("doveadm replicator status '*'").splitlines()[1:]
    users = {line.split()[0]: line.split() for line in status}
    assert set(users) == {user.address for user in cluster.users}
    assert all(columns[-1] == "-" for columns in users.values()), status  # the "failed" column


def test_replication_password_is_private(host):
    secret = host.file("/etc/dovecot/replication.conf")
    assert secret.mode == 0o640 and secret.user == "root" and secret.group == "dovecot"


def test_the_replication_watchdog_runs(host, cluster):
    with_a_peer(cluster)
    timer = host.service(TIMER)
    assert timer.is_enabled and timer.is_running
