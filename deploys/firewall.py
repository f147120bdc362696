"""iptables on every host: drop by default, open what the host's roles need, never lock out
the deploy.

New rules go live through ``/usr/local/sbin/mailstack-firewall``: the live rules are kept,
the new ones loaded atomically, and unless this machine can then open a new SSH connection
to the host within ``firewall.confirm_seconds``, the kept rules come back (commit-confirm,
as ``iptables-apply`` does). Only confirmed rules are saved for the next boot.

``allowances`` says what each host lets in, by role; the rule files and the lab's port scan
both read it. Everything else arriving at a host is dropped.
"""

import hashlib
import ipaddress
import socket
import time
from dataclasses import dataclass, replace

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import Sha1File
from pyinfra.operations import apt, python, systemd

from mailstack.component import EVERY_HOST, Component, ManagedFile, Target
from mailstack.config import Config
from mailstack.config.model import RateLimit
from mailstack.services import (
    COROSYNC_PORT,
    DRBD_PORT,
    HAPROXY_PEERS_PORT,
    MTA_STS_PORT,
    MX_METRICS,
    NODE_EXPORTER_PORT,
    PROMETHEUS_PORT,
    QNETD_PORT,
    REPLICATION_PORT,
    SERVICES,
    STATS_PORT,
)
from operations.components import cluster_config, component_files, deploy_target

PERSISTED = {"/etc/mailstack/firewall/rules.v4": "/etc/iptables/rules.v4",
             "/etc/mailstack/firewall/rules.v6": "/etc/iptables/rules.v6"}


def ssh_answers(address: str, port: int, seconds: float) -> bool:
    """A new TCP connection to the host's sshd gets its banner within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=2) as connection:
                connection.settimeout(2)
                if connection.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def apply_confirmed(state, host, address: str, port: int, seconds: int) -> bool:
    """Load the new rules, then keep them only if a new SSH connection still gets through.
    (pyinfra passes ``state`` and ``host`` and takes False as this operation's failure.)"""

    def failed(message: str) -> bool:
        host.log_styled(message, fg="red", log_func=logger.error)
        return False

    def as_root(action: str):
        """A python.call runs its commands without the operation's sudo: ask for it as the inventory does."""
        sudo = bool(host.data.get("_sudo"))
        return host.run_shell_command(f"/usr/local/sbin/mailstack-firewall {action}", _sudo=sudo)

    ok, output = as_root("apply")
    if not ok:
        return failed(f"the new firewall rules did not load; the previous ones are back: {output.stderr}")
    if not ssh_answers(address, port, seconds):
        as_root("rollback")  # the open session still works
        return failed(
            f"with the new firewall rules this machine could not open a new SSH connection to {address}:{port}"
            f" within {seconds} s; the previous rules are back (check firewall.admin_networks)"
        )
    ok, output = as_root("confirm")
    return ok or failed(f"saving the confirmed firewall rules failed: {output.stderr}")


@deploy("Firewall")
def firewall():
    config = cluster_config()
    apt.packages(name="Install iptables", packages=list(FIREWALL.packages))
    systemd.service(name="Load the saved rules at boot", service="netfilter-persistent", enabled=True)
    component_files(name="Configure the firewall", component=FIREWALL)
    wanted = FIREWALL.render(deploy_target())
    pending = [
        live for managed, content in wanted.items() if (live := PERSISTED.get(managed.path))
        and host.get_fact(Sha1File, path=live) != hashlib.sha1(content.encode()).hexdigest()
    ]
    if pending:
        python.call(
            name="Put the firewall rules live, kept only if SSH still gets through",
            function=apply_confirmed,
            address=host.data.ssh_hostname, port=config.ssh.port, seconds=config.firewall.confirm_seconds,
        )


ANYWHERE = ()
LAB_SERVICES = (("udp", 53, "DNS"), ("tcp", 53, "DNS"), ("tcp", 14000, "pebble ACME"), ("tcp", 15000, "pebble roots"))
OUTSIDE_SERVICES = (("udp", 53, "validating DNS resolver"), ("tcp", 53, "validating DNS resolver"))
LEGACY_SERVICES = (("tcp", 993, "the old server's IMAPS"), ("tcp", 25, "the old server's SMTP"))


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
    from_port_too: bool = False
    """Also traffic from ``port``: the replies of a connection this host opened to a peer's
    ``port`` before the firewall first went live, which the kernel then did not track and
    takes for new ones. DRBD's connection lives for as long as the pair does."""

    def port_matches(self) -> tuple[str, ...]:
        if self.port is None:
            return ("",)
        return (f" --dport {self.port}", f" --sport {self.port}") if self.from_port_too else (f" --dport {self.port}",)

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
        return replace(self, sources=sources)


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
        if config.mailbox_replication == "drbd":
            rules += [
                Allow("DRBD replication with the other mx host", "tcp", DRBD_PORT, peers("mx"), from_port_too=True),
                Allow("Corosync from the other mx host", "udp", COROSYNC_PORT, peers("mx")),
            ]
        elif peers("mx"):
            rules.append(Allow("dsync replication from the other mx host", "tcp", REPLICATION_PORT, peers("mx")))
    if "quorum" in groups:
        rules.append(Allow("corosync-qnetd from the mx hosts", "tcp", QNETD_PORT,
                           _addresses(config, config.hosts_in("mx"))))
    if "backup" in groups:
        rules.append(Allow("SSH from the mx hosts (borg serve only)", "tcp", config.ssh.port,
                           _addresses(config, config.hosts_in("mx"))))
    if monitors := _addresses(config, config.hosts_in("mon")):
        rules.append(Allow("node exporter from the mon hosts", "tcp", NODE_EXPORTER_PORT, monitors))
        if "lb" in groups:
            rules.append(Allow("HAProxy's metrics from the mon hosts", "tcp", STATS_PORT, monitors))
        if "mx" in groups:
            rules += [Allow(f"{job.capitalize()}'s metrics from the mon hosts", "tcp", port, monitors)
                      for job, port in MX_METRICS.items()]
    if "mon" in groups and admins:
        rules.append(Allow("Prometheus from the admin networks and the deploying machine", "tcp", PROMETHEUS_PORT,
                           admins))
    if "ns" in groups:
        rules += [Allow(f"{why} (lab)", protocol, port) for protocol, port, why in LAB_SERVICES]
    if "outside" in groups:
        rules += [Allow(f"{why} (lab)", protocol, port) for protocol, port, why in OUTSIDE_SERVICES]
    if "legacy" in groups:
        rules += [Allow(f"{why} (lab)", protocol, port) for protocol, port, why in LEGACY_SERVICES]
    return rules


def values(target: Target) -> dict:
    return {
        "deployer": target.deployer,
        "allowances": allowances(target.config, target.name, target.deployer),
        "rollback_seconds": target.config.firewall.confirm_seconds + 15,
    }


FIREWALL = Component(
    firewall,
    EVERY_HOST,
    files=tuple(
        ManagedFile(f"/etc/mailstack/firewall/rules.v{family}", mode="600",
                    template_path="/etc/mailstack/firewall/rules", values=(("family", family),))
        for family in (4, 6)
    ) + (ManagedFile("/usr/local/sbin/mailstack-firewall", mode="755"),),
    check=(
        "iptables-restore --test {root}/etc/mailstack/firewall/rules.v4"
        " && ip6tables-restore --test {root}/etc/mailstack/firewall/rules.v6"
        " && sh -n {root}/usr/local/sbin/mailstack-firewall"
    ),
    values=values,
    packages=("iptables", "netfilter-persistent", "iptables-persistent"),
)
