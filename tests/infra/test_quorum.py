"""The third vote of an mx pair on DRBD (docs/ha.md): corosync-qnetd on the quorum host hears
both mx hosts over TLS with their certificate checked, and each of them counts its vote;
Pacemaker keeps the deployed settings (fencing, what a host without quorum does); the mail
runs on the host that holds the mailboxes, and nothing of it on the other."""

import pytest

from deploys.drbd import RESOURCE
from deploys.pacemaker import properties
from facts.pacemaker import ClusterProperties
from mailstack.services import CLUSTERED, QNETD_PORT

GROUPS = ["quorum", "mx"]


def in_group(host, cluster, group: str) -> None:
    if cluster.mailbox_replication != "drbd":
        pytest.skip("the mx pair replicates with dsync: no third vote")
    if group not in cluster.hosts[host.backend.hostname].groups:
        pytest.skip(f"not a {group} host")


def test_qnetd_hears_both_mx_hosts_over_tls(host, cluster):
    in_group(host, cluster, "quorum")
    assert host.socket(f"tcp://{QNETD_PORT}").is_listening
    clients = " ".join(host.check_output("corosync-qnetd-tool -l -v -c %s", cluster.cluster.name).split())
    for name in cluster.hosts_in("mx"):
        assert str(cluster.hosts[name].address) in clients, clients
    assert clients.count("TLS active: Yes (client certificate verified)") == len(cluster.hosts_in("mx")), clients


def test_the_mx_host_counts_the_third_vote(host, cluster):
    in_group(host, cluster, "mx")
    status = host.check_output("corosync-quorumtool -s")
    lines = {line.partition(":")[0].strip(): line.partition(":")[2].strip() for line in status.splitlines()}
    assert lines.get("Quorate") == "Yes", status
    assert lines.get("Total votes") == "3", status
    assert "Qdevice" in status, status


def test_the_mail_runs_where_the_mailboxes_are_and_only_there(host, cluster):
    in_group(host, cluster, "mx")
    holds = host.mount_point("/var/vmail").exists
    role = host.check_output(f"drbdadm role {RESOURCE}")
    assert role == ("Primary/Secondary" if holds else "Secondary/Primary")
    assert [host.service(service).is_running for service in CLUSTERED] == [holds] * len(CLUSTERED)
    assert not any(host.service(service).is_enabled for service in CLUSTERED), "systemd would start them at boot"


def test_pacemaker_keeps_the_deployed_properties(host, cluster):
    in_group(host, cluster, "mx")
    live = ClusterProperties().process(host.check_output(ClusterProperties().command()).splitlines())
    wanted = properties(cluster.cluster.watchdog.seconds)
    kept = {section: {name: live.get(section, {}).get(name) for name in values} for section, values in wanted.items()}
    assert kept == wanted
