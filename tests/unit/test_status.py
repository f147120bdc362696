"""``mailstack status`` turns what Prometheus holds into findings, each problem with what to
do, and exits non-zero on any problem. Prometheus is faked here by its answers; the lab
tests ask the real one."""

import json

import pytest

from mailstack import backup, status, status_hosts
from mailstack.cli import main
from mailstack.inventory import load_for
from tests.support import LAB_INVENTORY

MD = 'node_md_disks_required - ignoring(state) node_md_disks{state="active"}'
DRBD = (status_hosts.PRIMARY, status_hosts.CONNECTED, status_hosts.UP_TO_DATE, status_hosts.QUORATE,
        status_hosts.FAILED_ACTIONS)
HEALTHY = {
    "up": [({"job": "prometheus"}, 1)],  # Prometheus answers
    "unit_active": [],  # only the hosts read directly have it
    'up{job="node"}': [({"host": name}, 1)
                       for name in ("lb1", "lb2", "mx1", "mx2", "mon1", "ns1", "out1", "bak1", "legacy1", "store1")],
    '(probe_ssl_earliest_cert_expiry{job="services"} - time()) / 86400': [({"service": "smtp"}, 60)],
    'probe_success{job="services"}': [({"service": "smtp", "instance": "mail.mailstack.test:25"}, 1)],
    "mailstack_vrrp_master": [({"host": "lb1"}, 1), ({"host": "lb2"}, 0)],
    "haproxy_server_status == 1": [({"proxy": "smtp", "server": "mx1", "state": "UP"}, 1),
                                   ({"proxy": "smtp", "server": "mx2", "state": "MAINT"}, 1)],
    "haproxy_server_last_session_seconds >= 0": [({"proxy": "smtp", "server": "mx1"}, 40),
                                                 ({"proxy": "smtp", "server": "mx2"}, 7)],
    "postfix_showq_message_size_bytes_count": [({"host": "mx1", "queue": "active"}, 1),
                                               ({"host": "mx1", "queue": "deferred"}, 2)],
    **{metric: [({"host": "mx1"}, 1), ({"host": "mx2"}, 1)]
       for metric in ("postfix_up", "mailstack_rspamd_up", "redis_up")},
    "mailstack_replication_since_success_seconds": [({"host": "mx1", "user": "a@x"}, 30),
                                                    ({"host": "mx1", "user": "b@x"}, 4000)],
    status.REPLICATION_FAILED: [],
    status.REPLICATION_STUCK: [],
    MD: [({"host": "store1", "device": "md0"}, 0)],
    "node_zfs_zpool_state == 1": [],
    backup.AGE: [({"host": "mx2"}, 600), ({"host": "mx1"}, 90000)],
    'ALERTS{alertstate="firing"}': [({"alertname": "VirtualIpMoved", "severity": "info", "host": "lb1"}, 1)],
    **dict.fromkeys(DRBD, []),  # a Debian 12 pair
}


@pytest.fixture(autouse=True)
def no_real_prometheus(monkeypatch):
    """A lab running beside the unit tests has a Prometheus at the inventory's address: a
    test that forgets to fake it would read the lab instead (as CI once did)."""
    def unreachable(self, expression):
        raise RuntimeError(f"a unit test asked the real Prometheus at {self.url}")
    monkeypatch.setattr(status.Prometheus, "query", unreachable)


def run(monkeypatch, capsys, answers: dict, *options: str) -> tuple[int, str]:
    monkeypatch.setattr(status.Prometheus, "query", lambda self, expression: answers[expression])
    code = main(["status", "--inventory", str(LAB_INVENTORY), *options])
    return code, capsys.readouterr().out


def test_a_healthy_cluster_is_all_well(monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, HEALTHY)
    assert code == 0 and out.endswith("all well\n")
    assert "ok   10.77.0.10: held by lb1" in out
    assert "ok   smtp/mx2: MAINT, active (last connection 7 s ago)" in out  # the latest connection, not the first
    assert "ok   smtp/mx1: UP\n" in out
    assert "ok   mx1: 3 message(s) queued, 2 deferred" in out and "ok   mx2: 0 message(s) queued, 0 deferred" in out
    assert "ok   mx1: 2 user(s), the least recent synced 67 min ago" in out
    assert "ok   bak1:/srv/borg/lab: last good backup 10 min ago (from mx2)" in out


def test_a_failed_sync_the_replicator_still_retries_is_named_but_well(monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, HEALTHY | {status.REPLICATION_FAILED: [({"host": "mx1", "user": "b@x"}, 1)]})
    assert code == 0 and "ok   mx1: 2 user(s), the least recent synced 67 min ago; retried within 5 min: b@x\n" in out


@pytest.mark.parametrize("change, says", [
    ({"mailstack_vrrp_master": [({"host": "lb1"}, 1), ({"host": "lb2"}, 1)]}, "held by lb1, lb2 (split brain)"),
    ({"mailstack_vrrp_master": [({"host": "lb1"}, 0)]}, "held by no lb host"),
    ({'up{job="node"}': [({"host": "mx1"}, 0)]}, "FAIL mx2: not answering"),
    ({"haproxy_server_status == 1": [({"proxy": "smtp", "server": "mx1", "state": "DOWN"}, 1)]},
     "FAIL smtp/mx1: DOWN  -> HAProxy's health check fails: look at mx1"),
    ({MD: [({"host": "store1", "device": "md0"}, 1)]}, "FAIL store1 md0: lacks 1 disk(s)"),
    ({'(probe_ssl_earliest_cert_expiry{job="services"} - time()) / 86400': [({"service": "smtp"}, 3)]},
     "FAIL smtp: expires in 3 days"),
    ({"redis_up": [({"host": "mx1"}, 1), ({"host": "mx2"}, 0)]},
     "FAIL mx2: 0 message(s) queued, 0 deferred; Redis does not answer  -> systemctl status"),
    ({"mailstack_rspamd_up": [({"host": "mx1"}, 0)]}, "FAIL mx1: 3 message(s) queued, 2 deferred; Rspamd does not"),
    ({status.REPLICATION_FAILED: [({"host": "mx1", "user": "b@x"}, 1)],
      status.REPLICATION_STUCK: [({"host": "mx1", "user": "b@x"}, 1)]},
     "FAIL mx1: 2 user(s), the least recent synced 67 min ago; failing: b@x  -> doveadm replicator status"),
    ({'ALERTS{alertstate="firing"}': [({"alertname": "BackendDown", "severity": "warning", "server": "mx1"}, 1)]},
     "FAIL BackendDown: server=mx1, severity=warning"),
    ({backup.AGE: [({"host": "mx2"}, 9000)]},
     "FAIL bak1:/srv/borg/lab: last good backup 2 h ago (from mx2)  -> mailstack backup run"),
    ({backup.AGE: []}, "FAIL bak1:/srv/borg/lab: no backup has succeeded yet  -> mailstack backup run"),
])
def test_each_problem_is_named_with_what_to_do_and_fails_the_exit_code(monkeypatch, capsys, change, says):
    code, out = run(monkeypatch, capsys, HEALTHY | change)
    assert code == 1 and says in out and "problem(s)" in out


def test_json_for_machines(monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, HEALTHY | {"mailstack_vrrp_master": []}, "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    [vip] = [finding for finding in document["findings"] if finding["area"] == "virtual IP"]
    assert vip == {"area": "virtual IP", "subject": "10.77.0.10", "ok": False, "detail": "held by no lb host",
                   "fix": "systemctl start keepalived haproxy on an lb host; journalctl -t keepalived-notify"}


def test_an_inventory_without_a_mon_host_is_read_directly(monkeypatch, capsys):
    staging = LAB_INVENTORY.with_name("staging.py")
    monkeypatch.setattr(status_hosts, "read_hosts", lambda config: dict.fromkeys(config.hosts))
    assert main(["status", "--inventory", str(staging)]) == 1
    assert "FAIL mx1: not answering  -> ssh mx1" in capsys.readouterr().out


HAPROXY_STATS = """\
# pxname,svname,qcur,status,lastsess
smtp,FRONTEND,0,OPEN,
smtp,mx1,0,UP,17
smtp,mx2,0,DOWN 1/2,-1
smtp,BACKEND,0,UP,17
stats,FRONTEND,0,OPEN,
"""
SAID = {
    "lb1": {"units": "active\nactive\n", "vip": "1\n", "haproxy": HAPROXY_STATS},
    "lb2": None,  # does not answer
    "mx1": {
        "units": "active\nactive\nfailed\nactive\n",
        "queue": '{"queue_name": "deferred", "queue_id": "A1"}\n{"queue_name": "active", "queue_id": "B2"}\n',
        "replication": "username\tpriority\tfast sync\tfull sync\tsuccess sync\tfailed\n"
                       "alice@x\tnone\t00:00:10\t00:01:00\t00:00:10\t-\n"
                       "bob@x\tnone\t-\t-\t-\ty\n",
        "backup": "1000000\nmailstack_backup_last_success_timestamp_seconds 0\n",  # never
    },
    "store1": {"units": "", "mdstat": "Personalities : [raid10]\nmd127 : active raid10 vde[3] vdd[2] vdb[0]\n"
                                      "      520192 blocks super 1.2 512K chunks 2 near-copies [4/3] [UU_U]\n\n",
               "zpool": ""},
}


def test_without_prometheus_the_hosts_are_read_directly(monkeypatch, capsys):
    said = {name: SAID.get(name, {"units": "active\n"}) for name in ("lb1", "lb2", "mx1", "mx2", "mon1", "ns1",
                                                                      "out1", "bak1", "store1")}
    said["mx2"] = SAID["mx1"] | {"units": "active\nactive\nactive\nactive\n", "replication": "", "queue": "",
                                 "backup": "1000000\nmailstack_backup_last_success_timestamp_seconds 999700\n"}
    monkeypatch.setattr(status_hosts, "read_hosts", lambda config: said)
    code = main(["status", "--inventory", str(LAB_INVENTORY), "--direct"])
    out = capsys.readouterr().out
    assert code == 1
    for line in ("FAIL lb2: not answering", "ok   lb1 haproxy: active", "FAIL mx1 rspamd: not active",
                 "ok   10.77.0.10: held by lb1", "ok   smtp/mx1: UP, active (last connection 17 s ago)",
                 "FAIL smtp/mx2: DOWN", "FAIL mx1: 2 message(s) queued, 1 deferred; Rspamd does not answer",
                 "ok   mx2: 0 message(s) queued, 0 deferred",
                 "FAIL mx1: 2 user(s), the least recent synced never; failing: bob@x",
                 "FAIL store1 md127: lacks 1 disk(s)",
                 "ok   bak1:/srv/borg/lab: last good backup 5 min ago (from mx2)"):
        assert line in out, line
    assert "alerts:" not in out and "services:" not in out  # they need the mon host


def test_a_prometheus_that_does_not_answer_is_a_problem_and_the_hosts_are_read(monkeypatch, capsys):
    def silent(self, expression):
        raise RuntimeError("Prometheus at http://10.77.0.41:9090 does not answer (refused)")
    monkeypatch.setattr(status.Prometheus, "query", silent)
    monkeypatch.setattr(status_hosts, "read_hosts", lambda config: {name: {"units": ""} for name in config.hosts})
    code = main(["status", "--inventory", str(LAB_INVENTORY)])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL Prometheus: Prometheus at http://10.77.0.41:9090 does not answer" in out
    assert "ok   mx1: up" in out


def test_each_host_runs_the_tools_of_its_groups_only():
    config = load_for(LAB_INVENTORY)
    lb, mx, ns = (status_hosts.script(config, name) for name in ("lb1", "mx1", "ns1"))
    assert "socat stdio /run/haproxy/admin.sock" in lb and "' 10.77.0.10/'" in lb and "postqueue" not in lb
    assert "postqueue -j" in mx and "doveadm -f tab replicator status '*'" in mx and "socat" not in mx
    assert ns == "echo '@@ units'; systemctl is-active named\n"


PAIR = {  # a Debian 13 pair: mx1 holds the mailboxes; mx2, the standby, runs no Postfix or Dovecot
    status_hosts.PRIMARY: [({"host": "mx1"}, 1), ({"host": "mx2"}, 0)],
    status_hosts.CONNECTED: [({"host": "mx1"}, 1), ({"host": "mx2"}, 1)],
    status_hosts.UP_TO_DATE: [({"host": "mx1"}, 1), ({"host": "mx2"}, 1)],
    status_hosts.QUORATE: [({"host": "mx1"}, 1), ({"host": "mx2"}, 1)],
    status_hosts.FAILED_ACTIONS: [({"host": "mx1"}, 0), ({"host": "mx2"}, 0)],
    "haproxy_server_status == 1": [({"proxy": "smtp", "server": "mx1", "state": "UP"}, 1),
                                   ({"proxy": "smtp", "server": "mx2", "state": "DOWN"}, 1)],
    "postfix_up": [({"host": "mx1"}, 1), ({"host": "mx2"}, 0)],
    "mailstack_replication_since_success_seconds": [],
}


def test_a_debian_13_pairs_standby_running_no_mail_is_all_well(monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, HEALTHY | PAIR)
    assert code == 0 and out.endswith("all well\n"), out
    for line in ("ok   smtp/mx2: DOWN (the standby: it runs no mail)", "ok   mx2: the standby: its queue is with",
                 "ok   mx1: holds the mailboxes (DRBD Primary), mirrored",
                 "ok   mx2: the standby (DRBD Secondary), mirrored"):
        assert line in out, line


@pytest.mark.parametrize("change, says", [
    ({"haproxy_server_status == 1": [({"proxy": "smtp", "server": "mx1", "state": "DOWN"}, 1)]},
     "FAIL smtp/mx1: DOWN  -> HAProxy's health check fails"),
    ({"postfix_up": [({"host": "mx1"}, 0), ({"host": "mx2"}, 0)]}, "FAIL mx1: 3 message(s) queued, 2 deferred; Post"),
    ({status_hosts.CONNECTED: [({"host": "mx1"}, 0), ({"host": "mx2"}, 0)]},
     "FAIL mx1: holds the mailboxes (DRBD Primary); not mirrored to the peer  -> drbdadm status"),
    ({status_hosts.UP_TO_DATE: [({"host": "mx1"}, 1), ({"host": "mx2"}, 0)]},
     "FAIL mx2: the standby (DRBD Secondary); its copy is not up to date"),
    ({status_hosts.PRIMARY: [({"host": "mx1"}, 0), ({"host": "mx2"}, 0)]}, "FAIL the mx pair: held by no mx host"),
    ({status_hosts.PRIMARY: [({"host": "mx1"}, 1), ({"host": "mx2"}, 1)]},
     "FAIL the mx pair: held by mx1, mx2 (split brain)"),
    ({status_hosts.QUORATE: [({"host": "mx1"}, 1), ({"host": "mx2"}, 0)]},
     "FAIL mx2: the standby (DRBD Secondary); no quorum"),
    ({status_hosts.FAILED_ACTIONS: [({"host": "mx2"}, 2)]},
     "FAIL mx2: the standby (DRBD Secondary); 2 failed action(s)"),
])
def test_each_problem_of_a_debian_13_pair_is_named(monkeypatch, capsys, change, says):
    code, out = run(monkeypatch, capsys, HEALTHY | PAIR | change)
    assert code == 1 and says in out, out


PROC_DRBD = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420
 0: cs:{connection} ro:{role} ds:UpToDate/UpToDate C r-----
    ns:1048 nr:0 dw:1048 dr:4245 al:9 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""
CRM_MON = """\
<pacemaker-result api-version="2.38" request="crm_mon --one-shot --output-as=xml">
  <summary>
    <current_dc present="true" version="3.0.0" name="mx1" id="1" with_quorum="true" mixed_version="false"/>
  </summary>
  <failures>
    <failure op_key="postfix_start_0" node="mx2" exitstatus="error" exitcode="1" call="31" task="start"/>
  </failures>
</pacemaker-result>
"""


def test_a_debian_13_pair_is_read_directly_from_drbd_and_pacemaker(monkeypatch, capsys):
    pair = LAB_INVENTORY.with_name("lab-drbd.py")
    config = load_for(pair)
    asked = status_hosts.script(config, "mx1")
    assert "cat /proc/drbd" in asked and "crm_mon" in asked and "replicator" not in asked
    said = {name: {"units": "active\nactive\n"} for name in config.hosts}
    said["mx1"] = {"units": "active\nactive\nactive\nactive\n", "queue": "",
                   "drbd": PROC_DRBD.format(connection="Connected", role="Primary/Secondary"), "cluster": CRM_MON}
    said["mx2"] = {"units": "inactive\ninactive\nactive\nactive\n", "queue": "",
                   "drbd": PROC_DRBD.format(connection="WFConnection", role="Secondary/Unknown"), "cluster": "oops"}
    monkeypatch.setattr(status_hosts, "read_hosts", lambda config: said)
    assert main(["status", "--inventory", str(pair), "--direct"]) == 1
    out = capsys.readouterr().out
    for line in ("ok   mx2 postfix: not active (the standby)", "ok   mx2 dovecot: not active (the standby)",
                 "FAIL mx1: holds the mailboxes (DRBD Primary); 1 failed action(s)",
                 "FAIL mx2: the standby (DRBD Secondary); not mirrored to the peer",
                 "ok   mx2: the standby: its queue is with the mailboxes"):
        assert line in out, out
