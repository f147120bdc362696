"""The DNS records of the example inventories, and the parts that must parse as receivers parse them."""

import re
import subprocess
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from mailstack import keys, records, secrets
from mailstack.inventory import load_for
from tests.support import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"
DKIM_VALUE = re.compile(r'"v=DKIM1; k=rsa; p=[^\n]*')


def prepared(inventory):
    """An example's configuration with its secrets made, as a DNS command makes them first."""
    config = load_for(inventory)
    secrets.make(config)
    return config


def zone(config) -> str:
    """The zone lines, DKIM keys masked: the keys are made per checkout (secrets are not committed)."""
    return "".join(DKIM_VALUE.sub('"v=DKIM1; k=rsa; p=<key>"', r.zone_line()) + "\n" for r in records.records(config))


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda path: path.stem)
def test_records_match_the_golden_files(inventory):
    assert zone(prepared(inventory)) == (GOLDEN / f"{inventory.stem}.zone").read_text()


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda path: path.stem)
def test_every_record_parses_as_a_resolver_would_read_it(inventory):
    for record in records.records(prepared(inventory)):
        name, ttl, _, kind, value = record.zone_line().split(" ", 4)
        rrset = dns.rrset.from_text(name, int(ttl), dns.rdataclass.IN, dns.rdatatype.from_text(kind), value)
        if kind == "TXT":
            (rdata,) = rrset
            assert all(len(part) <= 255 for part in rdata.strings)
            assert b"".join(rdata.strings).decode() == record.value


def test_spf_lists_every_outbound_address_and_stays_under_ten_lookups():
    config = prepared(EXAMPLES[0])
    for domain in config.domains:
        terms = records.spf(config, domain).split()
        assert terms[0] == "v=spf1" and terms[-1] == domain.spf_all
        assert {f"ip4:{address}" for address in records.outbound_addresses(config)} <= set(terms)
        lookups = [t for t in terms if t.split(":")[0].lstrip("+-~?") in ("a", "mx", "include", "ptr", "exists")]
        assert len(lookups) < 10


def test_dmarc_tags_round_trip():
    config = prepared(EXAMPLES[0])
    for domain in config.domains:
        tags = dict(part.strip().split("=", 1) for part in records.dmarc(domain).split(";"))
        assert tags["v"] == "DMARC1" and tags["p"] == domain.dmarc.policy
        if domain.dmarc.report_address:
            assert tags["rua"] == f"mailto:{domain.dmarc.report_address}"


def test_a_4096_bit_dkim_key_splits_into_strings_receivers_join(tmp_path):
    value = keys.dkim_record(keys.dkim_key(tmp_path / "big.key", 4096))
    line = records.Record("mail._domainkey.example.com", "TXT", value, "").zone_line()
    (rdata,) = dns.rrset.from_text(*line.split(" ", 4)[:2], "IN", "TXT", line.split(" ", 4)[4])
    assert len(rdata.strings) == 3 and b"".join(rdata.strings).decode() == value


def test_the_mta_sts_id_changes_with_the_policy():
    config = prepared(EXAMPLES[0])
    domain = config.domains[0]
    policy = records.mta_sts_policy(config, domain)
    assert records.mta_sts_id(policy) != records.mta_sts_id(policy.replace("enforce", "testing"))
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", records.mta_sts_id(policy))


def test_tlsa_matches_openssl(tmp_path):
    ca = keys.certificate_authority(tmp_path / "ca.pem", tmp_path / "ca.key", "test CA"), tmp_path / "ca.key"
    cert = keys.server_certificate(tmp_path / "mx.pem", tmp_path / "mx.key", ca, ["mail.example.com"])
    digest = subprocess.run(
        f"openssl x509 -in {cert} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
        shell=True, capture_output=True, text=True, check=True,
    ).stdout.split()[0]
    assert records.tlsa(cert.read_bytes()) == f"3 1 1 {digest}"



def test_spf_problems_name_what_is_wrong():
    from mailstack.dns import spf_problems

    assert spf_problems("v=spf1 ip4:192.0.2.21 -all", ["192.0.2.21"]) == []
    assert spf_problems("v=spf1 ip4:192.0.2.21 -all", ["192.0.2.21", "192.0.2.22"]) == ["leaves out 192.0.2.22"]
    assert spf_problems("spf1 -all", []) == ["does not start with v=spf1"]
    many = "v=spf1 " + " ".join(f"include:spf{i}.example.net" for i in range(11)) + " -all"
    assert spf_problems(many, []) == ["needs 11 DNS lookups; at most 10 are allowed"]
