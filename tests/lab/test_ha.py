"""High availability end to end: clients through the virtual IP while parts of the cluster fail.

Each failover test breaks one host hard (its container killed, as in a power cut), measures,
brings the host back and waits until the cluster is whole again, so later tests find it so.
"""

import socket
import time

import pytest

from deploys.replication_watchdog import UNIT as WATCHDOG
from mailstack.lab.mailcheck import message, pinned
from mailstack.services import REPLICATION_PORT, SERVICES
from tests.lab import clients, faults
from tests.support import LAB_INVENTORY, changes, deploy, lab_variant, ssh

pytestmark = pytest.mark.lab
TAKEOVER_BOUND = 10  # seconds; the measured figures are printed by bench/failover.py


def all_readable(vip, subjects: list[str], limit: float = 90) -> list[str]:
    """The subjects not found in bob's inbox through the virtual IP within ``limit`` seconds."""
    missing = list(subjects)
    deadline = time.monotonic() + limit
    with vip.imap("bob") as client:
        while missing and time.monotonic() < deadline:
            client.select("INBOX", readonly=True)
            _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            seen = {part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)}
            missing = [subject for subject in missing if subject not in seen]
            time.sleep(1)
    return missing


@pytest.fixture
def whole(lab):
    """The test starts and ends with the whole cluster up, whatever it broke."""
    faults.wait_for(lambda: faults.cluster_whole(lab), 120, "cluster whole before the test")
    yield
    faults.make_whole(lab)


def test_round_trip_through_the_virtual_ip_logs_the_client_address(lab, vip):
    client = str(lab.config.lab.address.ip)
    for backend in lab.config.hosts_in("mx"):
        with pinned(lab, backend):
            mail = message(vip.user("alice"), vip.user("bob"))
            vip.send("alice", mail)
            assert b"hello" in vip.wait_for("bob", mail["Subject"])
        since = "-2min"
        postfix = ssh(lab, backend, f"journalctl -q --no-pager -u postfix@- --since {since} -g 'client=unknown'")
        dovecot = ssh(lab, backend, f"journalctl -q --no-pager -u dovecot --since {since} -g 'imap-login: Login'")
        assert f"client=unknown[{client}]" in postfix
        assert f"rip={client}," in dovecot
        for lb in lab.config.hosts_in("lb"):
            assert str(lab.config.hosts[lb].address) + "]" not in postfix.replace(f"[{client}]", "")


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_backends_refuse_direct_clients(lab, service):
    """From an address that is not an lb host, without a PROXY header, no backend serves: the
    firewall drops the connection, and without it the service would wait for the header."""
    address = str(lab.config.hosts["mx1"].address)
    try:
        with socket.create_connection((address, service.port), timeout=5) as connection:
            connection.settimeout(8)
            greeting = connection.recv(100)
    except OSError:  # dropped, refused, or no greeting in time
        greeting = b""
    assert not greeting.startswith((b"220 ", b"* OK", b'"IMPLEMENTATION"')), greeting


def test_a_message_delivered_on_one_backend_is_readable_on_the_other(lab, vip):
    first, second = lab.config.hosts_in("mx")[:2]
    mail = message(vip.user("alice"), vip.user("bob"))
    with pinned(lab, first):
        vip.send("alice", mail)
        vip.wait_for("bob", mail["Subject"])
    started = time.monotonic()
    with pinned(lab, second):
        vip.wait_for("bob", mail["Subject"], timeout=30)
    print(f"replicated from {first} to {second} within {time.monotonic() - started:.1f} s")


def test_a_sync_stuck_before_its_stream_is_killed_and_the_mail_replicated(lab, vip):
    """The peer's answers to a sync are lost after the TCP handshake, as in a TLS stall, where
    doveadm has no timeout: the replicator would wait for that sync for ever. The watchdog
    kills it within a minute and a half, and once answers pass, the mail reaches the peer."""
    first, second = lab.config.hosts_in("mx")[:2]
    since = ssh(lab, first, "date '+%Y-%m-%d %H:%M:%S'").strip()
    answers = (f"OUTPUT -p tcp --sport {REPLICATION_PORT} -d {lab.config.hosts[first].address}"
               " -m length --length 120: -j DROP")  # all but the bare ACKs
    mail = message(vip.user("alice"), vip.user("bob"))
    ssh(lab, second, f"iptables -I {answers}")
    try:
        with pinned(lab, first):
            vip.send("alice", mail)
            vip.wait_for("bob", mail["Subject"])
        watchdog = f"journalctl -u {WATCHDOG} --since '{since}' --no-pager"
        faults.wait_for(lambda: "killing its process" in ssh(lab, first, watchdog), 120, "the stuck sync killed")
    finally:
        ssh(lab, second, f"iptables -D {answers}")
    with pinned(lab, second):
        vip.wait_for("bob", mail["Subject"], timeout=60)


def test_front_failover_loses_no_accepted_message(lab, vip, whole):
    first = lab.config.hosts_in("lb")[0]
    with clients.SubmitLoop(vip) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "messages before the crash", 0.1)
        crashed = time.monotonic()
        faults.crash(lab, first)
        takeover = clients.time_until_answer(str(lab.config.cluster.virtual_ip), 587, crashed)
        faults.wait_for(lambda: loop.accepted and loop.accepted[-1][1] > crashed + takeover, 60, "mail again")
        time.sleep(3)
    print(f"virtual IP answered from the other lb {takeover:.2f} s after {first} crashed; "
          f"client outage {loop.outage(crashed):.2f} s; {len(loop.accepted)} accepted, {len(loop.errors)} errors")
    assert faults.vip_holder(lab) != first
    assert takeover < TAKEOVER_BOUND
    assert all_readable(vip, [subject for subject, _ in loop.accepted]) == []


def test_backend_failover_loses_no_accepted_message(lab, vip, whole):
    first = lab.config.hosts_in("mx")[0]
    with clients.SubmitLoop(vip) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "messages before the crash", 0.1)
        crashed = time.monotonic()
        faults.crash(lab, first)
        faults.wait_for(lambda: loop.accepted and loop.accepted[-1][1] > crashed + 1, 60, "mail again")
        time.sleep(5)
    print(f"client outage after {first} crashed: {loop.outage(crashed):.2f} s; "
          f"{len(loop.accepted)} accepted, {len(loop.errors)} errors")
    # While it is down, mail accepted well before the crash was replicated and is readable.
    replicated = [subject for subject, moment in loop.accepted if moment < crashed - 5]
    assert all_readable(vip, replicated, limit=30) == []
    lab.start(first)  # mail it accepted but had not replicated comes back with it
    assert all_readable(vip, [subject for subject, _ in loop.accepted], limit=180) == []


def test_rolling_deploy_loses_no_accepted_message(lab, vip, whole, tmp_path):
    """One host of the mail path at a time (--serial), with a change that reloads Postfix and
    HAProxy on each; the hosts off the mail path (DNS, monitoring, backups, storage) are left out."""
    changed = lab_variant(
        tmp_path, {"new_per_minute: 6000": "new_per_minute: 5000", "mail:\n": "mail:\n  message_size_limit: 40M\n"}
    )
    mail_path = ("--limit", "lb", "--limit", "mx")
    with clients.SubmitLoop(vip) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "messages before the deploy", 0.1)
        report = deploy(changed, *mail_path, "--serial", "--fail-percent", "0")
        time.sleep(2)
    changed_hosts = {host for hosts in changes(report).values() for host in hosts}
    assert changed_hosts == set(lab.config.hosts_in("lb")) | set(lab.config.hosts_in("mx"))
    print(f"rolling deploy: {len(loop.accepted)} accepted, {len(loop.errors)} errors: {set(loop.errors[:5])}")
    assert all_readable(vip, [subject for subject, _ in loop.accepted]) == []
    deploy(LAB_INVENTORY, *mail_path)  # back to the lab's own configuration
