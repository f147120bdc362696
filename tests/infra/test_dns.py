"""DNS as other mail servers see it: the checks of ``mailstack dns check``, for any inventory.

The records are asked of the configured authority; the MTA-STS policy is fetched over
HTTPS with certificate validation; each mx host's DKIM key is compared with its record.
"""

import pytest

from mailstack import dkim, dns

GROUPS = ["mx"]


@pytest.fixture(scope="module")
def published(cluster) -> list[dns.Difference]:
    if cluster.dns is None:
        pytest.skip("no dns section: the records are published by hand (mailstack dns records)")
    return dns.compare(cluster)


def test_every_record_is_published_as_generated(published):
    assert [f"{d.status} {d.name} {d.type}" for d in published if d.status != "OK"] == []


def test_records_work_as_receivers_read_them(cluster, published, trusted_roots):
    """One SPF and DMARC each, SPF covers the outbound addresses, TLSA matches port 25,
    the MTA-STS policy is served with a valid certificate and the configured mode."""
    assert dns.semantic_problems(cluster, published, trusted_roots) == []


def test_dkim_record_holds_the_public_half_of_the_hosts_key(host, cluster, published):
    """Only the public half leaves the host: openssl derives it there."""
    found = {(d.name, d.type): d.found for d in published}
    for domain in cluster.domains:
        key = f"/var/lib/rspamd/dkim/{domain.name}.{domain.dkim_selector}.key"
        public = host.check_output(f"openssl pkey -in {key} -pubout -outform DER | base64 -w0")
        assert any(f"p={public}" in value for value in found[(dkim.record_name(domain), "TXT")]), domain.name
