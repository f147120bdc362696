"""Reading and replacing DNS records on the authoritative server, over RFC 2136 with TSIG."""

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from .config import Config

TIMEOUT = 3


def txt_value(value: str) -> str:
    """A TXT record in zone-file form, split into strings of at most 255 bytes (RFC 7208 3.3)."""
    data = value.encode()
    return " ".join(f'"{data[i:i + 255].decode()}"' for i in range(0, len(data), 255))


def query_txt(config: Config, name: str) -> str | None:
    """The TXT record ``name`` as the authoritative server answers it (strings joined), or None."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    try:
        answer = dns.query.udp(query, str(config.dns.server), port=config.dns.port, timeout=TIMEOUT)
    except (dns.exception.DNSException, OSError):
        return None
    for rrset in answer.answer:
        for rdata in rrset:
            return b"".join(rdata.strings).decode()
    return None


def replace_txt(config: Config, name: str, value: str, ttl: int = 300) -> None:
    """Make ``name`` hold exactly the TXT record ``value``."""
    settings = config.dns
    keyring = dns.tsigkeyring.from_text(
        {settings.tsig_key_name: config.path(settings.tsig_secret_file).read_text().strip()}
    )
    zone = _zone_of(config, name)
    update = dns.update.Update(zone, keyring=keyring, keyalgorithm=settings.tsig_algorithm)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, txt_value(value))
    update.replace(f"{name}.", ttl, rdata)
    response = dns.query.tcp(update, str(settings.server), port=settings.port, timeout=TIMEOUT)
    if response.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"{settings.server} refused the update of {name}: {dns.rcode.to_text(response.rcode())}")


def _zone_of(config: Config, name: str) -> str:
    """The mail domain whose zone holds ``name``."""
    return max((d.name for d in config.domains if name == d.name or name.endswith("." + d.name)), key=len)
