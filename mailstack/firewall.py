"""What each host's firewall lets in, by role, derived from the configuration.

The rule files (``templates/etc/mailstack/firewall/rules.j2``) and the lab's port scan
both read ``allowances``. Everything else arriving at a host is dropped.
"""

import ipaddress
from dataclasses import dataclass

from .config import Config
from .config.model import RateLimit
from .services import HAPROXY_PEERS_PORT, MTA_STS_PORT, REPLICATION_PORT, SERVICES

ANYWHERE = ()
LAB_SERVICES = (("udp", 53, "DNS"), ("tcp", 53, "DNS"), ("tcp", 14000, "pebble ACME"), ("tcp", 15000, "pebble roots"))


@dataclass(frozen=True)
class Allow:
    why: str
    protocol: str  # tcp, udp or vrrp
    port: int | None = None
    sources: tuple[str, ...] = ANYWHERE
    """Networks the traffic may come from; empty: anywhere."""
    destination: str | None = None
    """Only traffic to this address (the virtual IP)."""
    limit: RateLimit | None = None
    """Per-source limits on new and concurrent connections."""

    def for_family(self, family: int) -> "Allow | None":
        """This rule for IPv4 or IPv6 only, or None where none of its addresses belong."""
        def fits(address) -> bool:
            return ipaddress.ip_network(address, strict=False).version == family

        if self.protocol == "vrrp" and family == 6:
            return None
        if self.destination and not fits(self.destination):
            return None
        sources = tuple(source for source in self.sources if fits(source))
        if self.sources and not sources:
            return None
        return Allow(self.why, self.protocol, self.port, sources, self.destination, self.limit)


def _addresses(config: Config, names) -> tuple[str, ...]:
    return tuple(str(config.hosts[name].address) for name in names)


def allowances(config: Config, host_name: str, deployer: str | None = None) -> list[Allow]:
    """Everything ``host_name`` accepts; ``deployer`` is the address the deploy comes from."""
    groups = config.hosts[host_name].groups
    admins = tuple(str(network) for network in config.firewall.admin_networks)
    if deployer and config.firewall.allow_deployer:
        admins += (deployer,)
    rules = [Allow("SSH from the admin networks and the deploying machine", "tcp", config.ssh.port, admins)]
    if not admins:  # no one may log in: nothing to open
        rules = []

    def peers(group: str) -> tuple[str, ...]:
        return _addresses(config, [name for name in config.hosts_in(group) if name != host_name])

    if "lb" in groups:
        vip = str(config.cluster.virtual_ip)
        rules += [
            Allow(f"{service.name} on the virtual IP", "tcp", service.port, destination=vip,
                  limit=getattr(config.firewall.rate_limits, service.limit))
            for service in SERVICES
        ]
        if any(domain.mta_sts != "none" for domain in config.domains):
            rules.append(Allow("MTA-STS policy (HTTPS) on the virtual IP", "tcp", MTA_STS_PORT, destination=vip,
                               limit=config.firewall.rate_limits.https))
        if peers("lb"):
            rules += [
                Allow("VRRP from the other lb hosts", "vrrp", sources=peers("lb")),
                Allow("HAProxy peers (the active backend)", "tcp", HAPROXY_PEERS_PORT, peers("lb")),
            ]
    if "mx" in groups:
        lbs = _addresses(config, config.hosts_in("lb"))
        rules += [Allow(f"{service.name} from the lb hosts", "tcp", service.port, lbs) for service in SERVICES]
        if peers("mx"):
            rules.append(Allow("dsync replication from the other mx host", "tcp", REPLICATION_PORT, peers("mx")))
    if "ns" in groups:
        rules += [Allow(f"{why} (lab)", protocol, port) for protocol, port, why in LAB_SERVICES]
    return rules
