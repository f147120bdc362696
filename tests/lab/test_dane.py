"""DANE end to end. The lab's zone is signed (BIND's dnssec-policy); out1, another provider's
mail server, looks the cluster up through its validating resolver and sends with
``smtp_tls_security_level = dane``: over TLS verified against the TLSA record, and not at all
when the record no longer matches the key the cluster serves."""

import json
import shlex

import dns.rdata
import pytest

from mailstack import dns as dns_records
from mailstack.cli import main
from mailstack.lab.mailcheck import message
from tests.lab.faults import wait_for
from tests.support import ssh

pytestmark = pytest.mark.lab

SENDER = "out1"


@pytest.fixture
def outside(lab, vip):
    """out1 with nothing queued and nothing cached; the published records as the cluster wants them."""
    dns_records.push(lab.config)
    forget_answers(lab)
    yield
    ssh(lab, SENDER, "postsuper -d ALL >/dev/null 2>&1")
    dns_records.push(lab.config)
    forget_answers(lab)


def forget_answers(lab) -> None:
    """out1 forgets what it looked up: its resolver's cache, and the TLSA records each Postfix
    smtp process keeps until their TTL runs out (a reload starts new processes)."""
    zone = lab.config.domains[0].name
    ssh(lab, SENDER, f"unbound-control flush_zone {zone} >/dev/null && unbound-control flush_bogus >/dev/null"
                     " && postfix reload 2>/dev/null")


def send_from_outside(lab, vip, subject: str) -> None:
    mail = message(f"dane-probe@{lab.config.host_fqdn(SENDER)}", vip.user("alice"), subject)
    result = lab.run(SENDER, "/usr/sbin/sendmail -t -i", input=mail.as_string())
    assert result.returncode == 0, result.stderr


def queued(lab) -> list[dict]:
    """out1's queue, as ``postqueue -j`` lists it: one JSON object per message."""
    return [json.loads(line) for line in ssh(lab, SENDER, "postqueue -j").splitlines()]


def smtp_log(lab, since: str) -> str:
    return ssh(lab, SENDER, f"journalctl -q -o cat --since {shlex.quote(since)} -t postfix/smtp")


def test_the_zone_validates_from_the_configured_resolver(lab, capsys):
    assert main(["dns", "check", "--inventory", str(lab.config.source.with_suffix(".py"))]) == 0
    zone, resolver = lab.config.domains[0].name, lab.config.dns.resolver
    assert f"DNSSEC   {zone}: signed, and {resolver} validates it" in capsys.readouterr().out


def test_mail_from_outside_arrives_over_dane_verified_tls(lab, vip, outside):
    since = ssh(lab, SENDER, "date '+%Y-%m-%d %H:%M:%S'").strip()
    send_from_outside(lab, vip, "DANE verified")
    vip.wait_for("alice", "DANE verified")
    hostname, address = lab.config.cluster.mail_hostname, lab.config.cluster.virtual_ip
    assert f"Verified TLS connection established to {hostname}[{address}]:25" in smtp_log(lab, since)


def test_a_tlsa_record_that_no_longer_matches_stops_delivery_until_it_does(lab, vip, outside):
    name = f"_25._tcp.{lab.config.cluster.mail_hostname}."
    update = dns_records.make_update(lab.config, lab.config.domains[0].name)
    update.replace(name, 300, dns.rdata.from_text("IN", "TLSA", "3 1 1 " + "00" * 32))
    dns_records.send_update(lab.config, update)
    forget_answers(lab)

    send_from_outside(lab, vip, "DANE mismatch")
    wait_for(lambda: any(r.get("delay_reason") for m in queued(lab) for r in m["recipients"]), 60,
             "out1 defers the message")
    reasons = [r["delay_reason"] for m in queued(lab) for r in m["recipients"]]
    assert any("Server certificate not verified" in reason for reason in reasons), reasons

    dns_records.push(lab.config)  # the right record again
    forget_answers(lab)
    ssh(lab, SENDER, "postqueue -f")
    vip.wait_for("alice", "DANE mismatch", timeout=60)
    assert queued(lab) == []
