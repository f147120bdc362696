"""Reading and replacing DNS records on the authoritative server, over RFC 2136 with TSIG."""

import http.client
import smtplib
import socket
import ssl
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.tsigkeyring
import dns.update

from . import certificates, records
from .config import Config
from .services import MTA_STS_PORT

TIMEOUT = 3
MTA_STS_PATH = "/.well-known/mta-sts.txt"


def make_update(config: Config, zone: str) -> dns.update.Update:
    """An RFC 2136 update of ``zone``, signed with the configured TSIG key."""
    settings = config.dns
    keyring = dns.tsigkeyring.from_text(
        {settings.tsig_key_name: config.path(settings.tsig_secret_file).read_text().strip()}
    )
    return dns.update.Update(zone, keyring=keyring, keyalgorithm=settings.tsig_algorithm)


def send_update(config: Config, update: dns.update.Update) -> None:
    settings = config.dns
    response = dns.query.tcp(update, str(settings.server), port=settings.port, timeout=TIMEOUT)
    if response.rcode() != dns.rcode.NOERROR:
        zone = update.origin.to_text(omit_final_dot=True)
        raise RuntimeError(f"{settings.server} refused the update of {zone}: {dns.rcode.to_text(response.rcode())}")


def _zone_of(config: Config, name: str) -> str:
    """The mail domain whose zone holds ``name``."""
    return max((d.name for d in config.domains if name == d.name or name.endswith("." + d.name)), key=len)


# Publishing and checking every record of ``mailstack.records``.

# TXT records share names with records of others (the apex holds SPF beside site
# verifications): mailstack owns only the TXT strings that start with these.
OWNED_TXT = ("v=spf1", "v=DMARC1", "v=DKIM1", "v=STSv1", "v=TLSRPTv1")


def _canonical(kind: str, rdata) -> str:
    """A record value as comparable text: TXT strings joined, other types in presentation form."""
    if kind == "TXT":
        return b"".join(rdata.strings).decode()
    return rdata.to_text().lower()


def _owned(kind: str, value: str, wanted: list[str]) -> bool:
    if kind != "TXT":
        return True
    return any(value.startswith(prefix) and want.startswith(prefix) for prefix in OWNED_TXT for want in wanted)


@dataclass(frozen=True)
class Difference:
    name: str
    type: str
    wanted: tuple[str, ...]
    found: tuple[str, ...]
    """What the server answers, limited to what mailstack owns at that name."""

    @property
    def status(self) -> str:
        if set(self.wanted) == set(self.found):
            return "OK"
        return "MISSING" if not self.found else "MISMATCH"


def wanted_rrsets(config: Config) -> dict[tuple[str, str], list[str]]:
    wanted: dict[tuple[str, str], list[str]] = {}
    for record in records.records(config, certificates.served_certificates(config)):
        rdata = dns.rdata.from_text(dns.rdataclass.IN, record.type, record.zone_line().split(" ", 4)[4])
        wanted.setdefault((record.name, record.type), []).append(_canonical(record.type, rdata))
    return wanted


def ask(server: str, port: int, name: str, kind: str, dnssec: bool = False) -> dns.message.Message:
    """``server``'s answer to ``name``/``kind`` over TCP (DKIM keys do not fit UDP); with
    ``dnssec``, asking whether it validated the answer (the AD flag)."""
    query = dns.message.make_query(name, kind, want_dnssec=dnssec)
    if dnssec:
        query.flags |= dns.flags.AD
    try:
        return dns.query.tcp(query, server, port=port, timeout=TIMEOUT)
    except (OSError, EOFError, dns.exception.DNSException) as error:
        raise RuntimeError(f"{server}:{port}: no answer for {name} {kind} ({error or type(error).__name__})") from None


def lookup(server: str, port: int, name: str, kind: str) -> list:
    """The rdatas of ``name``/``kind`` as ``server`` answers."""
    answer = ask(server, port, name, kind)
    return [rdata for rrset in answer.answer if rrset.rdtype == dns.rdatatype.from_text(kind) for rdata in rrset]


def compare(config: Config, server: str | None = None) -> list[Difference]:
    """Every wanted record next to what ``server`` (default: the configured authority) answers."""
    address, port = (server, 53) if server else (str(config.dns.server), config.dns.port)
    found = []
    for (name, kind), values in wanted_rrsets(config).items():
        live = [_canonical(kind, rdata) for rdata in lookup(address, port, name, kind)]
        found.append(Difference(name, kind, tuple(values), tuple(v for v in live if _owned(kind, v, values))))
    return found


def push(config: Config, dry_run: bool = False) -> list[str]:
    """Make the authority hold every wanted record, changing only what differs and only what
    mailstack owns. Returns the changes as ``+``/``-`` lines."""
    lines, updates = [], {}
    for difference in compare(config):
        if difference.status == "OK":
            continue
        zone = _zone_of(config, difference.name)
        update = updates.setdefault(zone, make_update(config, zone))
        for value in set(difference.found) - set(difference.wanted):
            lines.append(f"- {difference.name} {difference.type} {value}")
            update.delete(f"{difference.name}.", _rdata(difference.type, value))
        for value in set(difference.wanted) - set(difference.found):
            lines.append(f"+ {difference.name} {difference.type} {value}")
            update.add(f"{difference.name}.", records.TTL, _rdata(difference.type, value))
    if not dry_run:
        for update in updates.values():
            send_update(config, update)
    return lines


def _rdata(kind: str, value: str):
    """A record value (TXT: the whole string, unsplit) as dnspython data."""
    text = records.txt_value(value) if kind == "TXT" else value
    return dns.rdata.from_text(dns.rdataclass.IN, kind, text)


def spf_problems(record: str, outbound: list[str]) -> list[str]:
    """What is wrong with an SPF record: unparsable, an outbound address left out, or over
    the 10 DNS lookups RFC 7208 allows."""
    terms = record.split()
    if not terms or terms[0] != "v=spf1":
        return ["does not start with v=spf1"]
    problems = [f"leaves out {address}" for address in outbound if not any(t.endswith(f":{address}") for t in terms)]
    lookups = [t for t in terms[1:] if t.lstrip("+-~?").split(":")[0].split("=")[0] in LOOKUP_TERMS]
    if len(lookups) > 10:
        problems.append(f"needs {len(lookups)} DNS lookups; at most 10 are allowed")
    return problems


LOOKUP_TERMS = ("a", "mx", "include", "ptr", "exists", "redirect")


def served_tlsa(address: str) -> str:
    """The TLSA value of the certificate served on ``address`` port 25 after STARTTLS."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # DANE checks the key, not a CA
    with smtplib.SMTP(address, 25, timeout=30) as smtp:
        smtp.starttls(context=context)
        return records.tlsa(smtp.sock.getpeercert(binary_form=True))


def fetch_mta_sts_policy(name: str, address: str, roots: str = "") -> str:
    """The policy served at https://``name``/.well-known/mta-sts.txt by ``address``, with the
    certificate validated for ``name`` as a sending server does (system roots plus ``roots``)."""
    context = ssl.create_default_context()
    if roots:
        context.load_verify_locations(cadata=roots)
    with socket.create_connection((address, MTA_STS_PORT), timeout=TIMEOUT * 3) as plain:
        with context.wrap_socket(plain, server_hostname=name) as sock:
            sock.sendall(f"GET {MTA_STS_PATH} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read().decode()
    if response.status != 200:
        raise RuntimeError(f"https://{name}{MTA_STS_PATH}: HTTP {response.status}")
    return body


def mta_sts_problems(config: Config, domain, address: str, roots: str = "") -> list[str]:
    """What keeps senders from using a domain's MTA-STS policy: it cannot be fetched with a
    valid certificate, or its mode or mx list differ from the configuration."""
    name = f"mta-sts.{domain.name}"
    try:
        text = fetch_mta_sts_policy(name, address, roots)
    except (OSError, RuntimeError, http.client.HTTPException) as error:
        return [f"{name}: the MTA-STS policy cannot be fetched over HTTPS ({error})"]
    fields = [tuple(part.strip() for part in line.split(":", 1)) for line in text.splitlines() if ":" in line]
    policy = {key: [value for k, value in fields if k == key] for key, _ in fields}
    problems = []
    if policy.get("version") != ["STSv1"]:
        problems.append(f"{name}: the policy's version is not STSv1")
    if policy.get("mode") != [domain.mta_sts]:
        problems.append(f"{name}: the policy's mode is {policy.get('mode')}, not {domain.mta_sts}")
    if config.cluster.mail_hostname not in policy.get("mx", []):
        problems.append(f"{name}: the policy does not list the mx {config.cluster.mail_hostname}")
    return problems


def semantic_problems(config: Config, differences: list[Difference], roots: str = "") -> list[str]:
    """Beyond equality: one SPF and one DMARC record per domain, an SPF that works, a TLSA
    record that matches the certificate served on port 25, and MTA-STS policies served as
    configured over HTTPS, trusting the system's roots and ``roots``."""
    found = {(d.name, d.type): d.found for d in differences}
    problems = []
    tlsa_name = f"_25._tcp.{config.cluster.mail_hostname}"
    if published := found.get((tlsa_name, "TLSA")):
        served = served_tlsa(str(config.cluster.virtual_ip))
        if served.lower() not in published:
            problems.append(f"{tlsa_name}: no TLSA record matches the key served on port 25 ({served})")
    for domain in config.domains:
        spf = [v for v in found.get((domain.name, "TXT"), ()) if v.startswith("v=spf1")]
        dmarc = [v for v in found.get((f"_dmarc.{domain.name}", "TXT"), ()) if v.startswith("v=DMARC1")]
        if len(spf) > 1:
            problems.append(f"{domain.name}: {len(spf)} SPF records; receivers treat that as an error")
        if len(dmarc) > 1:
            problems.append(f"_dmarc.{domain.name}: {len(dmarc)} DMARC records; receivers ignore them all")
        for record in spf:
            problems += [f"{domain.name}: SPF {p}" for p in spf_problems(record, records.outbound_addresses(config))]
        policy_server = found.get((f"mta-sts.{domain.name}", "A")) or found.get((f"mta-sts.{domain.name}", "AAAA"))
        if domain.mta_sts != "none" and policy_server:
            problems += mta_sts_problems(config, domain, policy_server[0], roots)
    return problems


# DNSSEC: senders use the TLSA records (DANE) only on answers their resolver validated.


@dataclass(frozen=True)
class Validation:
    zone: str
    resolver: str
    status: str
    """signed-and-valid, unsigned, not-validated or bogus"""

    @property
    def finding(self) -> str:
        return {
            "signed-and-valid": f"{self.zone}: signed, and {self.resolver} validates it",
            "unsigned": f"{self.zone}: the zone is not signed (no DNSKEY), so senders ignore its TLSA records:"
            " DANE has no effect",
            "not-validated": f"{self.zone}: signed, but {self.resolver} does not validate it (no AD flag):"
            " publish its DS record at the parent zone, or ask a validating resolver; until then senders"
            " ignore its TLSA records",
            "bogus": f"{self.zone}: {self.resolver} finds its signatures invalid (SERVFAIL): senders can reach"
            " no name in it",
        }[self.status]


def default_resolver(config: Config) -> str:
    """The resolver that judges DNSSEC: the configured one, else this machine's first."""
    if config.dns and config.dns.resolver:
        return str(config.dns.resolver)
    try:
        return str(dns.resolver.get_default_resolver().nameservers[0])
    except (dns.resolver.NoResolverConfiguration, IndexError):
        raise RuntimeError("no resolver to ask about DNSSEC: set dns.resolver or give --resolver") from None


def validations(config: Config, resolver: str) -> list[Validation]:
    """For each mail domain's zone: is it signed (a DNSKEY at the authority), and does
    ``resolver`` validate it (the AD flag on its SOA)?"""
    authority, port = (str(config.dns.server), config.dns.port) if config.dns else (resolver, 53)
    found = []
    for zone in sorted({domain.name for domain in config.domains}):
        if not lookup(authority, port, zone, "DNSKEY"):
            status = "unsigned"
        else:
            answer = ask(resolver, 53, zone, "SOA", dnssec=True)
            if answer.rcode() == dns.rcode.SERVFAIL:
                status = "bogus"
            else:
                status = "signed-and-valid" if answer.flags & dns.flags.AD else "not-validated"
        found.append(Validation(zone, resolver, status))
    return found
