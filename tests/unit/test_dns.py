"""DNS helpers: long TXT records are split into 255-byte strings; DKIM records match their keys;
the zone's signing key is BIND's own; DNSSEC findings say what they mean for DANE."""

import base64
import re

import dns.flags
import dns.message
import dns.rcode
import pytest
from cryptography.hazmat.primitives import serialization

from mailstack import dns as dns_records
from mailstack import keys
from mailstack.config import load
from mailstack.records import txt_value
from tests.support import LAB_INVENTORY


def test_long_txt_values_are_split_at_255_bytes():
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    parts = re.findall(r'"([^"]*)"', txt_value(value))
    assert [len(part) for part in parts] == [255, 255, len(value) - 510]
    assert "".join(parts) == value


def test_dkim_record_carries_the_public_key_and_the_key_is_kept(tmp_path):
    path = keys.dkim_key(tmp_path / "example.com.mail.key", 2048)
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_bytes()
    assert keys.dkim_key(path, 2048).read_bytes() == first  # never silently replaced
    record = keys.dkim_record(path)
    public = serialization.load_der_public_key(base64.b64decode(record.split("p=")[1]))
    private = serialization.load_pem_private_key(first, password=None)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert public.key_size == 2048


def test_the_zone_signing_key_is_made_once_by_bind_for_its_default_policy(tmp_path):
    made = keys.zone_signing_key(tmp_path, "example.com")
    assert sorted(path.suffix for path in made) == [".key", ".private", ".state"]
    assert {path.suffix for path in made if path.stat().st_mode & 0o077} <= {".key", ".state"}
    assert "KSK: yes" in made[2].read_text() and "ZSK: yes" in made[2].read_text()  # one combined key
    assert keys.zone_signing_key(tmp_path, "example.com") == made


def _answer(flags: int = 0, rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    answer = dns.message.make_response(dns.message.make_query("mailstack.test", "SOA"))
    answer.flags |= flags
    answer.set_rcode(rcode)
    return answer


@pytest.mark.parametrize(
    "dnskeys, answer, status, says",
    [
        ([], None, "unsigned", "senders ignore its TLSA records: DANE has no effect"),
        (["key"], _answer(), "not-validated", "publish its DS record at the parent zone"),
        (["key"], _answer(rcode=dns.rcode.SERVFAIL), "bogus", "signatures invalid"),
        (["key"], _answer(dns.flags.AD), "signed-and-valid", "signed, and 192.0.2.54 validates it"),
    ],
)
def test_dnssec_findings_say_what_they_mean_for_dane(monkeypatch, dnskeys, answer, status, says):
    monkeypatch.setattr(dns_records, "lookup", lambda *query: dnskeys)
    monkeypatch.setattr(dns_records, "ask", lambda *query, dnssec: answer)
    [validation] = dns_records.validations(load(LAB_INVENTORY.with_suffix(".yml")), "192.0.2.54")
    assert validation.status == status
    assert says in validation.finding
