"""The mail core end to end on each of the lab's mx hosts, with real clients.

Clients go through the virtual IP, pinned to one backend at a time (see conftest.py).
Certificates come from pebble on ns1 through certbot, so clients trust pebble's root.
"""

import re
import smtplib
import time

import dkim
import dns.message
import dns.query
import pytest

from mailstack.lab.mailcheck import message
from tests.lab.clients import ManageSieve
from tests.support import ssh

pytestmark = pytest.mark.lab


def test_round_trip_to_a_user_and_an_alias(mx, started):
    direct = message(mx.user("alice"), mx.user("bob"))
    via_alias = message(mx.user("alice"), mx.user("team"))
    mx.send("alice", direct)
    mx.send("alice", via_alias)
    assert b"hello" in mx.wait_for("bob", direct["Subject"])
    assert b"hello" in mx.wait_for("bob", via_alias["Subject"])
    assert b"hello" in mx.wait_for("alice", via_alias["Subject"])


def test_submitted_mail_carries_a_dkim_signature_that_verifies(lab, mx):
    mail = message(mx.user("alice"), mx.user("bob"))
    mx.send("alice", mail)
    raw = mx.wait_for("bob", mail["Subject"])
    assert b"DKIM-Signature:" in raw

    def from_ns1(name, timeout=5):
        query = dns.message.make_query(name.decode() if isinstance(name, bytes) else name, "TXT")
        answer = dns.query.udp(query, str(lab.config.dns.server), timeout=timeout)
        return b"".join(b"".join(rdata.strings) for rrset in answer.answer for rdata in rrset)

    assert dkim.verify(raw, dnsfunc=from_ns1)


def test_no_relaying_without_authentication(mx):
    foreign = "someone@elsewhere.example"
    with mx.smtp() as smtp:
        smtp.ehlo("client.lab.test")
        smtp.mail("spammer@elsewhere.example")
        code, reply = smtp.rcpt(foreign)
        assert code == 554 and b"Relay access denied" in reply
    with mx.submission() as smtp:
        smtp.mail(mx.user("alice"))
        code, _ = smtp.rcpt(foreign)
        assert code >= 500
    with mx.submissions() as smtp:
        smtp.ehlo("client.lab.test")
        smtp.mail(mx.user("alice"))
        code, _ = smtp.rcpt(foreign)
        assert code >= 500


def test_no_auth_before_starttls_on_submission(mx):
    with smtplib.SMTP(mx.address, 587, local_hostname="client.lab.test", timeout=20) as smtp:
        smtp.ehlo("client.lab.test")
        assert not smtp.has_extn("auth")
        code, _ = smtp.docmd("AUTH", "PLAIN AGFsaWNlQG1haWxzdGFjay50ZXN0AGFsaWNlLWxhYi1wdw==")
        assert code >= 500


def test_wrong_password_is_refused(mx):
    with mx.submission() as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(mx.user("alice"), "not-her-password")


def test_unknown_recipient_is_refused_at_rcpt(mx):
    with mx.smtp() as smtp:
        smtp.ehlo("client.lab.test")
        smtp.mail("friend@elsewhere.example")
        code, reply = smtp.rcpt(mx.user("nobody"))
        assert code == 550, reply


def test_over_quota_recipient_is_refused_at_rcpt(lab, mx):
    with mx.smtp() as smtp:  # a message announced (SIZE) larger than the quota
        smtp.ehlo("client.lab.test")
        smtp.mail("friend@elsewhere.example", ["SIZE=5000"])
        code, reply = smtp.rcpt(mx.user("carol"))
        assert code == 552 and b"Mailbox is full" in reply
    # A mailbox already over its quota: filled past the limit behind Dovecot's back (without
    # the quota plugin; with replication, so that the peer's INBOX is the same mailbox).
    host, carol = mx.host, mx.user("carol")
    ssh(lab, host, f"head -c 4096 /dev/zero | tr '\\0' x | sed 's/^/Subject: filler\\n\\n/' "
        f"| doveadm -o 'mail_plugins=notify replication' save -u {carol} && doveadm quota recalc -u {carol}")
    try:
        with mx.smtp() as smtp:
            smtp.ehlo("client.lab.test")
            smtp.mail("friend@elsewhere.example")
            code, reply = smtp.rcpt(carol)
            assert code == 552 and b"Mailbox is full" in reply
    finally:  # back under the quota: the peer refuses to replicate a mailbox over it (ReplicationFailing)
        for name in lab.config.hosts_in("mx"):
            ssh(lab, name, f"doveadm expunge -u {carol} mailbox INBOX header Subject filler"
                f" && doveadm quota recalc -u {carol} && doveadm replicator replicate -f {carol}")


def test_users_may_send_only_as_themselves(mx):
    with mx.submission("alice") as smtp:
        smtp.mail(mx.user("bob"))
        code, reply = smtp.rcpt(mx.user("bob"))
        assert code == 553 and b"not owned by user" in reply


def test_sieve_script_files_into_a_folder(mx):
    sieve = ManageSieve(mx, "bob")
    sieve.put_and_activate(
        "lab",
        'require ["fileinto", "mailbox"];\n'
        'if header :contains "subject" "project" { fileinto :create "Projects"; }\n',
    )
    sieve.close()
    mail = message(mx.user("alice"), mx.user("bob"), subject=f"project {time.time_ns()}")
    mx.send("alice", mail)
    assert b"hello" in mx.wait_for("bob", mail["Subject"], folder="Projects")


def _served_serial(mx, port: int) -> int:
    import socket

    with socket.create_connection((mx.address, port), timeout=10) as raw:
        with mx.context.wrap_socket(raw) as tls:
            return int(tls.getpeercert()["serialNumber"], 16)


def test_certificate_is_from_pebble_and_a_renewal_reloads_services(lab, mx):
    host = mx.host
    issuer = ssh(lab, host, "openssl x509 -noout -issuer -in /etc/letsencrypt/live/mailstack/cert.pem")
    assert "Pebble" in issuer
    before = _served_serial(mx, 993)
    ssh(lab, host, "certbot renew --force-renewal --no-random-sleep-on-renew -q")
    deadline = time.monotonic() + 30
    while _served_serial(mx, 993) == before and time.monotonic() < deadline:
        time.sleep(1)
    assert _served_serial(mx, 993) != before
    with mx.submission() as smtp:
        serial = int(smtp.sock.getpeercert()["serialNumber"], 16)
    assert serial != before


# A Dovecot reload (the certificate renewal above) ends the peer's dsync sessions it serves;
# the replicator on this host logs that as an error and syncs again.
CUT_BY_PEER_RELOAD = re.compile(r"doveadm\([^)]*\)<[^>]*><[^>]*>: Error: read\(SSL [0-9.]+\) failed: EOF")
# An smtpd that starts while Dovecot reloads may find its auth service between processes and
# exit (Postfix starts another for the next client); seen 18 ms after the reload's SIGHUP.
SASL_DURING_RELOAD = re.compile(r"postfix/\w+/smtpd\[\d+\]: fatal: no SASL authentication mechanisms")
RELOAD = "master: Warning: SIGHUP received - reloading configuration"


def test_logs_hold_no_errors(lab, mx, started):
    """Last in this module: nothing failed in Postfix, Dovecot, Rspamd or Redis while the tests ran,
    except what a reload of Dovecot's does to the connections it cuts (within a second of it)."""
    units = " ".join(f"-u {unit}" for unit in ("postfix@-", "postfix", "dovecot", "rspamd", "redis-server"))
    journal = ssh(lab, mx.host, f"journalctl -q --no-pager -o short-unix --since '{started}' {units} || true")
    reloads = [float(line.split()[0]) for line in journal.splitlines() if RELOAD in line]
    errors = ssh(lab, mx.host, f"journalctl -q --no-pager -o short-unix -p err --since '{started}' {units} || true")

    def after_a_reload(line: str) -> bool:
        return bool(SASL_DURING_RELOAD.search(line)) and any(0 <= float(line.split()[0]) - at <= 1 for at in reloads)

    assert [line for line in errors.splitlines()
            if not CUT_BY_PEER_RELOAD.search(line) and not after_a_reload(line)] == []
