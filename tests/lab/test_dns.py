"""Publishing the cluster's DNS records to ns1's BIND over RFC 2136, and checking them."""

import email
import shlex
import ssl

import dkim as dkimpy
import dns.query
import dns.rdata
import dns.update
import pytest

from mailstack import certificates, dkim, records
from mailstack import dns as dns_records
from mailstack.cli import main
from mailstack.lab.mailcheck import message

pytestmark = pytest.mark.lab


def test_push_then_check_then_nothing_more_to_push(lab):
    dns_records.push(lab.config)
    differences = dns_records.compare(lab.config)
    assert all(difference.status == "OK" for difference in differences)
    assert dns_records.semantic_problems(lab.config, differences, certificates.extra_roots(lab.config)) == []
    assert dns_records.push(lab.config) == []


def test_check_names_a_record_changed_behind_its_back_and_push_repairs_it(lab, capsys):
    domain = lab.config.domains[0].name
    update = dns_records.make_update(lab.config, domain)
    update.replace(f"_dmarc.{domain}.", 300, dns.rdata.from_text("IN", "TXT", '"v=DMARC1; p=none"'))
    dns_records.send_update(lab.config, update)
    inventory = str(lab.config.source.with_suffix(".py"))
    assert main(["dns", "check", "--inventory", inventory]) == 1
    assert f"MISMATCH _dmarc.{domain} TXT" in capsys.readouterr().out
    assert dns_records.push(lab.config) == [
        f"- _dmarc.{domain} TXT v=DMARC1; p=none",
        f"+ _dmarc.{domain} TXT {dns_records.records.dmarc(lab.config.domains[0])}",
    ]
    assert main(["dns", "check", "--inventory", inventory]) == 0


def test_push_leaves_other_txt_records_at_the_apex_alone(lab):
    domain = lab.config.domains[0].name
    update = dns_records.make_update(lab.config, domain)
    update.add(f"{domain}.", 300, dns.rdata.from_text("IN", "TXT", '"site-verification=abc"'))
    dns_records.send_update(lab.config, update)
    dns_records.push(lab.config)
    apex = [b"".join(r.strings).decode() for r in dns_records.lookup(str(lab.config.dns.server), 53, domain, "TXT")]
    assert "site-verification=abc" in apex


def test_mail_from_a_cluster_host_passes_spf_dkim_and_dmarc(lab, vip):
    """Another MTA's view: mx1 sends a message it signed through the virtual IP's port 25."""
    domain = lab.config.domains[0]
    mail = message(vip.user("alice"), vip.user("bob"))
    mail["Date"] = "Mon, 23 Nov 2026 08:00:00 +0000"
    signature = dkimpy.sign(
        mail.as_bytes(), domain.dkim_selector.encode(), domain.name.encode(),
        dkim.key_file(lab.config, domain).read_bytes(), include_headers=[b"From", b"To", b"Subject", b"Message-ID"],
    )
    sender = (
        "import smtplib, sys\n"
        f"smtp = smtplib.SMTP('{lab.config.cluster.virtual_ip}', 25, local_hostname='{lab.config.host_fqdn('mx1')}')\n"
        f"smtp.sendmail('{vip.user('alice')}', ['{vip.user('bob')}'], sys.stdin.buffer.read())\n"
    )
    result = lab.run("mx1", f"python3 -c {shlex.quote(sender)}", input=(signature + mail.as_bytes()).decode())
    assert result.returncode == 0, result.stderr
    results = str(email.message_from_bytes(vip.wait_for("bob", mail["Subject"]))["Authentication-Results"])
    assert "spf=pass" in results and "dkim=pass" in results and "dmarc=pass" in results, results


def test_mta_sts_policy_is_served_through_the_virtual_ip_with_a_lab_ca_certificate(lab):
    domain, vip = lab.config.domains[0], str(lab.config.cluster.virtual_ip)
    name = f"mta-sts.{domain.name}"
    assert dns_records.fetch_mta_sts_policy(name, vip, certificates.extra_roots(lab.config)) == records.mta_sts_policy(
        lab.config, domain
    )
    with pytest.raises(ssl.SSLCertVerificationError):  # the certificate is validated: not without pebble's root
        dns_records.fetch_mta_sts_policy(name, vip)
