"""The front on lb hosts: HAProxy balances the mail services of the virtual IP, Keepalived moves it."""

import time

import pytest
import testinfra

from deploys.keepalived import HAPROXY_STOPPED
from mailstack import capacity, haproxy
from mailstack.services import MTA_STS_PORT, SERVICES, STATS_PORT
from tests.infra.tls import negotiated_cipher

GROUPS = ["lb"]
# Reads of HAProxy's state, a second apart, for its backends to settle.
SETTLE_READS = 10


@pytest.mark.parametrize("service", ["haproxy", "keepalived"])
def test_front_services_enabled_and_running(host, service):
    assert host.service(service).is_enabled
    assert host.service(service).is_running


def test_haproxy_sends_clients_to_the_mx_hosts_that_run_the_mail(host, cluster, mail_hosts):
    """Every backend of the mx hosts that run the mail, and none of a Debian 13 pair's standby.
    Once settled: after one failed check (a slow host under load) a backend reads "UP 1/2"
    until its next check a quarter second later; one that stays short of "UP" fails."""
    expected = [(service.name, backend) for service in SERVICES for backend in cluster.hosts_in("mx")]
    for _ in range(SETTLE_READS):
        servers = haproxy.servers(host.check_output(haproxy.SHOW_STAT))
        states = {key: _state(servers.get(key)) for key in expected}
        wrong = {key: state for key, state in states.items() if (state == "UP") != (key[1] in mail_hosts)}
        if not wrong:
            return
        time.sleep(1)
    assert wrong == {}


def _state(server: dict | None) -> str:
    """"UP", or what is short of it and why (the last check's result)."""
    if server is None:
        return "missing"
    if server["status"] == "UP":
        return "UP"
    return f"{server['status']}: {server['check_status']} {server['last_chk']}"


def test_haproxy_listens_on_the_virtual_ip_and_its_stats_on_loopback_only(host, cluster):
    """Its metrics also on the host's own address when mon hosts scrape them (the firewall
    admits only those)."""
    for service in SERVICES:
        assert host.socket(f"tcp://{cluster.cluster.virtual_ip}:{service.port}").is_listening
    listening = host.check_output(f"ss -Hltn 'sport = :{STATS_PORT}'")
    assert f"127.0.0.1:{STATS_PORT}" in listening and f"0.0.0.0:{STATS_PORT}" not in listening
    own = f"{cluster.hosts[host.backend.hostname].address}:{STATS_PORT}"
    assert (own in listening) == bool(cluster.hosts_in("mon"))


def test_exactly_one_lb_holds_the_virtual_ip(host, cluster):
    """Asked on every lb host, answered for all of them."""
    holders = []
    for name in cluster.hosts_in("lb"):
        peer = testinfra.get_host(f"ssh://{name}", ssh_config=str(cluster.secrets_dir / "ssh_config"))
        addresses = peer.check_output("ip -o -4 addr show; ip -o -6 addr show")
        if f" {cluster.cluster.virtual_ip}/" in addresses:
            holders.append(name)
    assert len(holders) == 1, holders


def test_mta_sts_https_follows_the_servers_cipher_order(host, cluster):
    if any(domain.mta_sts != "none" for domain in cluster.domains):
        assert negotiated_cipher(host, cluster.cluster.virtual_ip, MTA_STS_PORT).endswith("AES128-GCM-SHA256")


def test_keepalived_learns_at_once_when_haproxy_stops(host):
    """HAProxy's unit writes the file Keepalived tracks: 1 when HAProxy stops or dies, 0 while
    it runs."""
    assert HAPROXY_STOPPED in host.check_output("systemctl show -p ExecStopPost haproxy")
    assert host.file(HAPROXY_STOPPED).content_string == "0\n"


def test_haproxy_holds_the_connections_configured(host, cluster):
    """mail.imap_sessions and the other services' share (docs/capacity.md), with the open
    files two descriptors each need."""
    said = host.check_output("echo 'show info' | socat stdio /run/haproxy/admin.sock")
    info = dict(line.split(": ", 1) for line in said.splitlines() if ": " in line)
    assert int(info["Maxconn"]) == capacity.haproxy_connections(cluster)
    assert int(info["Ulimit-n"]) >= 2 * capacity.haproxy_connections(cluster)
