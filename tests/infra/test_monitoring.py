"""Monitoring on the mon hosts: Prometheus scrapes every target, holds every alert rule, and
Alertmanager takes its configuration. On a Debian 13 pair the standby (DRBD Secondary) runs no
Dovecot and has no Postfix queue mounted, by design."""

import json
import shlex
import time
import urllib.parse

import pytest
import yaml

from mailstack import status_hosts
from mailstack.services import PROMETHEUS_PORT, listen

GROUPS = ["mon"]
SETTLE = 90  # seconds for every target's first scrape after a deploy (probes run every 30 s)


def prometheus_api(host, cluster, path: str) -> dict:
    """Prometheus's HTTP API as the mon host itself asks it."""
    address = cluster.hosts[host.backend.hostname].address
    url = f"http://{listen(address, PROMETHEUS_PORT)}/api/v1/{path}"
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    return json.loads(host.check_output(f"python3 -c {shlex.quote(script)}"))["data"]


@pytest.mark.parametrize("service", ["prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"])
def test_monitoring_services_enabled_and_running(host, service):
    assert host.service(service).is_enabled
    assert host.service(service).is_running


def settled(read, wanted):
    """What ``read()`` returns once ``wanted`` holds of it, or its last answer after SETTLE
    seconds: the first scrape or probe after a deploy or a DNS push can come up to 30 s late."""
    deadline = time.monotonic() + SETTLE
    while not wanted(answer := read()) and time.monotonic() < deadline:
        time.sleep(5)
    return answer


def test_every_scrape_target_is_up(host, cluster):
    idle = standbys(host, cluster)

    def down(targets) -> dict[str, str]:
        return {f"{t['labels']['job']} {t['scrapeUrl']}": t["lastError"] for t in targets if t["health"] != "up"
                and not (t["labels"]["job"] == "dovecot" and t["labels"].get("host") in idle)}

    targets = settled(lambda: prometheus_api(host, cluster, "targets")["activeTargets"],
                      lambda targets: not down(targets))
    assert down(targets) == {}
    scraped = {(t["labels"]["job"], t["labels"].get("host")) for t in targets}
    assert {("node", name) for name in cluster.hosts} <= scraped
    assert {("haproxy", name) for name in cluster.hosts_in("lb")} <= scraped
    assert {(job, name) for job in ("dovecot", "postfix", "redis") for name in cluster.hosts_in("mx")} <= scraped


@pytest.mark.parametrize("query, pair", [
    ("postfix_up", None),  # the Postfix exporter reads the queue
    ("redis_up", None),
    ("mailstack_rspamd_up", None),  # the mail metrics timer reads Rspamd's controller
    ("count by (host) (mailstack_replication_failed == 0)", "dsync"),  # ... and replication per user
    ("node_drbd_connected", "drbd"),  # the node exporter reads DRBD's state
    ("mailstack_cluster_quorate", "drbd"),  # the mail metrics timer asks Pacemaker
])
def test_every_mx_host_reports_its_mail_services(host, cluster, query, pair):
    if pair and cluster.mailbox_replication != pair:
        pytest.skip(f"only on a {pair} pair")
    expected = set(cluster.hosts_in("mx")) - (standbys(host, cluster) if query == "postfix_up" else set())
    assert reporting(host, cluster, query) == expected


def test_every_probe_through_the_virtual_ip_succeeds(host, cluster):
    results = settled(lambda: prometheus_api(host, cluster, "query?query=probe_success")["result"],
                      lambda results: all(result["value"][1] == "1" for result in results))
    failing = [result["metric"]["service"] for result in results if result["value"][1] != "1"]
    assert results and failing == []


def test_every_alert_rule_is_loaded(host, cluster):
    rules = yaml.safe_load(host.file("/etc/prometheus/rules/mailstack.yml").content_string)
    wanted = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    loaded = {rule["name"] for group in prometheus_api(host, cluster, "rules")["groups"] for rule in group["rules"]}
    assert wanted and loaded == wanted


def test_no_alert_fires_on_a_healthy_cluster(host, cluster):
    firing = [alert["labels"] for alert in prometheus_api(host, cluster, "alerts")["alerts"]
              if alert["state"] == "firing" and alert["labels"].get("severity") != "info"]
    assert firing == []


def test_alertmanager_takes_its_configuration(host):
    assert host.run("amtool check-config /etc/prometheus/alertmanager.yml").rc == 0
    status = host.check_output("amtool --alertmanager.url=http://127.0.0.1:9093 config show")
    assert "postmaster" in status


def test_every_service_serves_the_certificate_on_disk(host, cluster):
    assert reporting(host, cluster, "mailstack_certificate_info") == {*cluster.hosts_in("mx"), *cluster.hosts_in("lb")}
    on_disk = {labels["fingerprint_sha256"] for labels, _ in series(host, cluster, "mailstack_certificate_info")}
    served = [labels for labels, _ in series(host, cluster, "probe_ssl_last_chain_info")]
    assert served and [probe["instance"] for probe in served if probe["fingerprint_sha256"] not in on_disk] == []


def series(host, cluster, query: str) -> list[tuple[dict, float]]:
    """Each series of an instant query, as (labels, value)."""
    results = prometheus_api(host, cluster, f"query?query={urllib.parse.quote(query)}")["result"]
    return [(result["metric"], float(result["value"][1])) for result in results]


def reporting(host, cluster, query: str) -> set[str]:
    """The hosts for which ``query`` is at least 1."""
    return {labels["host"] for labels, value in series(host, cluster, query) if value >= 1}


def standbys(host, cluster) -> set[str]:
    """The mx hosts of a Debian 13 pair that do not hold the mailboxes (DRBD Secondary)."""
    return {labels["host"] for labels, _ in series(host, cluster, f"{status_hosts.PRIMARY} == 0")}
