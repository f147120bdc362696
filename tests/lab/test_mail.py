"""The mail core end to end on the lab's mx hosts, with real clients.

Certificates come from pebble on ns1 through certbot, so clients trust pebble's root.
"""

import smtplib
import ssl
import subprocess
import time
import urllib.request

import pytest

from tests.lab.mail import ManageSieve, Mx, message

pytestmark = pytest.mark.lab


def ssh(lab, host: str, command: str) -> str:
    result = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_file), host, command], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def pebble_root(lab) -> str:
    """pebble's current root (it makes a new one at each start), fetched over HTTPS from the lab CA."""
    ns = lab.config.hosts[lab.config.hosts_in("ns")[0]].address
    context = ssl.create_default_context(cafile=str(lab.ca[0]))
    context.check_hostname = False  # addressed by IP; the chain is still verified
    return urllib.request.urlopen(f"https://{ns}:15000/roots/0", context=context, timeout=10).read().decode()


@pytest.fixture(scope="module")
def started(lab) -> str:
    """When the mail tests began, for reading the journal of this run only."""
    return ssh(lab, "mx1", "date '+%Y-%m-%d %H:%M:%S'").strip()


@pytest.fixture(scope="module", params=["mx1", "mx2"])
def mx(request, lab, pebble_root, started) -> Mx:
    name = request.param
    config = lab.config
    return Mx(str(config.hosts[name].address), config.host_fqdn(name), pebble_root, config.domains[0].name)


def test_round_trip_to_a_user_and_an_alias(mx):
    direct = message(mx.user("alice"), mx.user("bob"))
    via_alias = message(mx.user("alice"), mx.user("team"))
    mx.send("alice", direct)
    mx.send("alice", via_alias)
    assert b"hello" in mx.wait_for("bob", direct["Subject"])
    assert b"hello" in mx.wait_for("bob", via_alias["Subject"])
    assert b"hello" in mx.wait_for("alice", via_alias["Subject"])


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
    # A mailbox already over its quota: filled past the limit behind Dovecot's back.
    host, carol = mx.name.split(".")[0], mx.user("carol")
    ssh(lab, host, f"head -c 4096 /dev/zero | tr '\\0' x | sed 's/^/Subject: filler\\n\\n/' "
        f"| doveadm -o mail_plugins= save -u {carol} && doveadm quota recalc -u {carol}")
    with mx.smtp() as smtp:
        smtp.ehlo("client.lab.test")
        smtp.mail("friend@elsewhere.example")
        code, reply = smtp.rcpt(carol)
        assert code == 552 and b"Mailbox is full" in reply


def test_users_may_send_only_as_themselves(mx):
    with mx.submission("alice") as smtp:
        smtp.mail(mx.user("bob"))
        code, reply = smtp.rcpt(mx.user("bob"))
        assert code == 553 and b"not owned by user" in reply


def test_sieve_script_files_into_a_folder(mx):
    sieve = ManageSieve(mx, "bob")
    sieve.put_and_activate(
        "lab", 'require ["fileinto", "mailbox"];\nif header :contains "subject" "project" { fileinto :create "Projects"; }\n'
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
    host = mx.name.split(".")[0]
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


def test_logs_hold_no_errors(lab, mx, started):
    """Last in this module: nothing failed in Postfix or Dovecot while the tests ran."""
    host = mx.name.split(".")[0]
    journal = ssh(
        lab, host, f"journalctl -q --no-pager -p err --since '{started}' -u postfix@- -u postfix -u dovecot || true"
    )
    assert journal.strip() == ""
