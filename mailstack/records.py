"""Every DNS record a mail domain of the cluster needs, derived from the configuration.

``mailstack dns records`` prints them; each record says what it is for. Reverse DNS (PTR)
belongs to whoever owns the addresses, so it is listed for the operator to request.
"""

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import dkim
from .config import Config

TTL = 300
MTA_STS_MAX_AGE = 604800  # one week, as RFC 8461 suggests for a stable policy
SRV = {"submission": 587, "submissions": 465, "imap": 143, "imaps": 993}  # RFC 6186, RFC 8314


def txt_value(value: str) -> str:
    """A TXT record in zone-file form, split into strings of at most 255 bytes (RFC 7208 3.3)."""
    data = value.encode()
    return " ".join(f'"{data[i:i + 255].decode()}"' for i in range(0, len(data), 255))



@dataclass(frozen=True)
class Record:
    name: str
    type: str
    value: str
    why: str

    def zone_line(self) -> str:
        value = txt_value(self.value) if self.type == "TXT" else self.value
        return f"{self.name}. {TTL} IN {self.type} {value}"


def mta_sts_policy(config: Config, domain) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt."""
    return (
        f"version: STSv1\nmode: {domain.mta_sts}\nmx: {config.cluster.mail_hostname}\nmax_age: {MTA_STS_MAX_AGE}\n"
    )


def mta_sts_id(policy: str) -> str:
    """Changes whenever the policy does (RFC 8461: up to 32 letters and digits)."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def outbound_addresses(config: Config) -> list[str]:
    """Where the cluster's mail leaves from: the mx hosts, which deliver directly, and the mon
    hosts, whose Alertmanager mails the postmaster from the first domain."""
    return [str(config.hosts[name].address) for group in ("mx", "mon") for name in config.hosts_in(group)]


def spf(config: Config, domain) -> str:
    mechanisms = [f"ip{4 if ':' not in address else 6}:{address}" for address in outbound_addresses(config)]
    return " ".join(["v=spf1", "mx", *mechanisms, domain.spf_all])


def dmarc(domain) -> str:
    parts = ["v=DMARC1", f"p={domain.dmarc.policy}"]
    if domain.dmarc.report_address:
        parts.append(f"rua=mailto:{domain.dmarc.report_address}")
    return "; ".join(parts)


def tlsa(certificate: bytes) -> str:
    """DANE-EE ``3 1 1``: the SHA-256 of the certificate's public key (stable while certbot
    reuses the key). ``certificate``: PEM, or DER as a TLS peer sends it."""
    if certificate.startswith(b"-----"):
        certificate = x509.load_pem_x509_certificate(certificate)
    else:
        certificate = x509.load_der_x509_certificate(certificate)
    public = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(public).hexdigest()}"


def tls_rpt(config: Config, domain) -> str:
    return f"v=TLSRPTv1; rua=mailto:{domain.tls_report_address or config.postmaster}"


def _address_record(name: str, address, why: str) -> Record:
    return Record(name, "AAAA" if ":" in str(address) else "A", str(address), why)


def _caa(config: Config, name: str) -> list[Record]:
    if config.tls.mode == "acme":
        return [Record(name, "CAA", f'0 issue "{config.tls.acme.caa_identity}"', "only the configured CA may issue")]
    if config.tls.mode == "internal":
        return [Record(name, "CAA", '0 issue ";"', "no public CA may issue: the cluster has its own")]
    return []


def records(config: Config, certificates: dict[str, bytes] | None = None) -> list[Record]:
    """The records of every mail domain, plus the cluster's own names; with the mx hosts'
    ``certificates`` (PEM by host) also DANE TLSA for port 25."""
    mail = config.cluster.mail_hostname
    found = [_address_record(mail, config.cluster.virtual_ip, "the public mail name: the virtual IP")]
    found += [
        _address_record(config.host_fqdn(name), host.address, "the host's own name (certificates, replication)")
        for name, host in config.hosts.items()
    ]
    found += [
        Record(f"_25._tcp.{mail}", "TLSA", value, "DANE: the key an mx host's certificate holds on port 25")
        for value in sorted({tlsa(pem) for pem in (certificates or {}).values()})
    ]
    if not any(mail == domain.name or mail.endswith(f".{domain.name}") for domain in config.domains):
        found += _caa(config, mail)  # a CAA record of a parent domain covers names below it
    for domain in config.domains:
        name = domain.name
        found += [
            Record(name, "MX", f"10 {mail}.", "where mail for the domain goes"),
            Record(name, "TXT", spf(config, domain), "SPF: who may send mail from the domain"),
            Record(dkim.record_name(domain), "TXT", dkim.record(config, domain), "DKIM: the signing key's public half"),
            Record(f"_dmarc.{name}", "TXT", dmarc(domain), "DMARC: what receivers do with mail that fails"),
            Record(f"_smtp._tls.{name}", "TXT", tls_rpt(config, domain), "TLS-RPT: where senders report TLS failures"),
        ]
        if domain.mta_sts != "none":
            policy_id = mta_sts_id(mta_sts_policy(config, domain))
            found += [
                Record(f"_mta-sts.{name}", "TXT", f"v=STSv1; id={policy_id}", "MTA-STS: a policy exists, its version"),
                _address_record(f"mta-sts.{name}", config.cluster.virtual_ip, "MTA-STS: serves the policy over HTTPS"),
            ]
        found += [
            Record(f"_{service}._tcp.{name}", "SRV", f"0 1 {port} {mail}.", f"clients find {service} (RFC 6186, 8314)")
            for service, port in SRV.items()
        ]
        found += [
            Record(f"{label}.{name}", "CNAME", f"{mail}.", "mail client set-up")
            for label in ("autoconfig", "autodiscover")
        ]
        found += _caa(config, name)
    return found


def reverse_dns(config: Config) -> list[tuple[str, str]]:
    """(address, name) pairs the operator must ask the address owner for: each outbound
    address points back to the name the cluster greets with."""
    return [(address, config.cluster.mail_hostname) for address in outbound_addresses(config)]

