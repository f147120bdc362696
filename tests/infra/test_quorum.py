"""The third vote of an mx pair on DRBD (docs/ha.md): corosync-qnetd on the quorum host hears
both mx hosts over TLS with their certificate checked, and each of them counts its vote."""

import pytest

from mailstack.services import QNETD_PORT

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
