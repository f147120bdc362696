"""The alert rules, as rendered for the lab's mon host, pass Prometheus's own rule tests
(``tests/unit/alerts/``), and every alert has a test there."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploys import node_exporter
from deploys.node_exporter import NODE_EXPORTER
from mailstack.component import Target
from mailstack.inventory import load_for
from mailstack.render import render_host
from tests.support import LAB_INVENTORY

ALERT_TESTS = Path(__file__).parent / "alerts"


def _rendered_rules(folder: Path) -> Path:
    config = load_for(LAB_INVENTORY)
    render_host(config, config.hosts_in("mon")[0], folder)
    return folder / "etc/prometheus/rules"


def test_every_alert_fires_when_it_should_and_only_then(tmp_path):
    rules = _rendered_rules(tmp_path)
    for test in ALERT_TESTS.glob("*.test.yml"):
        shutil.copy(test, rules)
    result = subprocess.run(
        ["promtool", "test", "rules", *sorted(path.name for path in rules.glob("*.test.yml"))],
        cwd=rules, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test(tmp_path):
    rules = yaml.safe_load((_rendered_rules(tmp_path) / "mailstack.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"]
        for test in ALERT_TESTS.glob("*.test.yml")
        for group in yaml.safe_load(test.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    }
    assert alerts == tested


ZPOOL_STATUS = """\
  pool: tank
 state: ONLINE
status: One or more devices has experienced an unrecoverable error.
config:

\tNAME        STATE     READ WRITE CKSUM
\ttank        ONLINE       0     0     0
\t  mirror-0  ONLINE       0     0     0
\t    vdb     ONLINE       0     0     3
\t    vdc     ONLINE       1     0     0

errors: No known data errors
"""


def _run_metrics_script(tmp_path, monkeypatch, inventory: str, name: str, command: str, output: str):
    """mailstack-metrics as rendered for host ``name``, with ``command`` printing ``output``."""
    config = load_for(LAB_INVENTORY.with_name(inventory))
    monkeypatch.setattr(node_exporter, "TEXTFILES", str(tmp_path))
    script = next(content for managed, content in NODE_EXPORTER.render(Target(config, name)).items()
                  if managed.path == "/usr/local/sbin/mailstack-metrics")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / command).write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    (tmp_path / "bin" / command).chmod(0o755)
    subprocess.run(["sh", "-c", script], env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"}, capture_output=True)
    return config


def test_the_metrics_script_sums_a_zfs_pools_errors(tmp_path, monkeypatch):
    """The storage host's part of mailstack-metrics, run against zpool's own output."""
    config = load_for(LAB_INVENTORY.with_name("staging.py"))
    name = next(name for name in config.hosts_in("storage") if config.hosts[name].storage.zfs)
    _run_metrics_script(tmp_path, monkeypatch, "staging.py", name, "zpool", ZPOOL_STATUS)
    pool = config.hosts[name].storage.zfs.pool
    assert (tmp_path / "zpool.prom").read_text() == f'mailstack_zpool_errors{{zpool="{pool}"}} 4\n'


CRM_MON = """\
<pacemaker-result api-version="2.38" request="crm_mon --one-shot --output-as=xml">
  <summary>
    <stack type="corosync" pacemakerd-state="running"/>
    <current_dc present="true" version="3.0.0-3.0.0" name="mx1" id="1" with_quorum="{quorum}" mixed_version="false"/>
  </summary>
  <failures>
    <failure op_key="postfix_start_0" node="mx2" exitstatus="error" exitcode="1" call="31" task="start"/>
  </failures>
  <status code="0" message="OK"/>
</pacemaker-result>
"""


@pytest.mark.parametrize("quorum, quorate", [("true", 1), ("false", 0)])
def test_the_metrics_script_reports_a_debian_13_pairs_quorum_and_failed_actions(tmp_path, monkeypatch, quorum, quorate):
    """A DRBD pair's mx host: Pacemaker's quorum and failed actions, read from crm_mon's XML;
    its replication state is not asked (Dovecot 2.4 has no replicator)."""
    _run_metrics_script(tmp_path, monkeypatch, "lab-drbd.py", "mx1", "crm_mon", CRM_MON.format(quorum=quorum))
    assert (tmp_path / "cluster.prom").read_text() == (
        f"mailstack_cluster_quorate {quorate}\nmailstack_cluster_failed_actions 1\n"
    )
    assert not (tmp_path / "replication.prom").exists()
