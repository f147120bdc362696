"""What each role's firewall opens, derived from the example configurations."""

from deploys.firewall import allowances
from mailstack.inventory import load_for
from mailstack.services import COROSYNC_PORT, DRBD_PORT, REPLICATION_PORT, SERVICES
from tests.support import PROJECT

PROD = load_for(PROJECT / "inventories/prod.py")
MAIL_PORTS = {service.port for service in SERVICES}


def opened(host_name: str, deployer: str | None = None) -> dict[int | None, tuple]:
    return {rule.port: (rule.sources, rule.destination) for rule in allowances(PROD, host_name, deployer)}


def test_mx_hosts_take_mail_only_from_the_lb_hosts():
    rules = opened("mx1")
    for port in MAIL_PORTS:
        assert rules[port] == (("192.0.2.11", "192.0.2.12"), None)


def test_a_debian_12_pair_opens_dsync_to_its_peer():
    pair = load_for(PROJECT / "inventories/lab.py")
    rules = {(rule.protocol, rule.port): rule.sources for rule in allowances(pair, "mx1")}
    assert rules[("tcp", REPLICATION_PORT)] == ("10.77.0.22",)
    assert ("tcp", DRBD_PORT) not in rules and ("udp", COROSYNC_PORT) not in rules


def test_a_debian_13_pair_opens_drbd_and_corosync_to_its_peer_instead_of_dsync():
    pair = load_for(PROJECT / "inventories/lab-drbd.py")
    rules = {(rule.protocol, rule.port): rule.sources for rule in allowances(pair, "mx2")}
    assert rules[("tcp", DRBD_PORT)] == rules[("udp", COROSYNC_PORT)] == ("10.77.0.21",)
    assert ("tcp", REPLICATION_PORT) not in rules


def test_drbd_takes_its_peers_replies_to_a_connection_older_than_the_firewall():
    """The first deploy connects DRBD before the firewall goes live, so the kernel does not track
    that connection: the peer's replies from its port would look new, and be dropped."""
    pair = load_for(PROJECT / "inventories/lab-drbd.py")
    matches = {rule.port: rule.port_matches() for rule in allowances(pair, "mx2") if rule.port}
    assert matches[DRBD_PORT] == (f" --dport {DRBD_PORT}", f" --sport {DRBD_PORT}")
    assert all(len(ports) == 1 for port, ports in matches.items() if port != DRBD_PORT)


def test_lb_hosts_take_mail_on_the_virtual_ip_from_anywhere_with_limits():
    rules = {rule.port: rule for rule in allowances(PROD, "lb1") if rule.port in MAIL_PORTS}
    assert set(rules) == MAIL_PORTS
    assert all(rule.destination == "192.0.2.10" and not rule.sources and rule.limit for rule in rules.values())
    assert rules[587].limit == PROD.firewall.rate_limits.submission


def test_ssh_is_open_to_admin_networks_and_the_deployer_only():
    assert opened("mx1", "203.0.113.5")[22][0] == ("198.51.100.0/24", "2001:db8:100::/48", "203.0.113.5")


def test_rules_for_one_family_keep_only_its_addresses():
    ssh = next(rule for rule in allowances(PROD, "mx1", "2001:db8::5") if rule.port == 22)
    assert ssh.for_family(6).sources == ("2001:db8:100::/48", "2001:db8::5")
    assert ssh.for_family(4).sources == ("198.51.100.0/24",)
    vrrp = next(rule for rule in allowances(PROD, "lb1") if rule.protocol == "vrrp")
    assert vrrp.for_family(6) is None
