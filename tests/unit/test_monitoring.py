"""The alert rules, as rendered for the lab's mon host, pass Prometheus's own rule tests
(``tests/unit/alerts/``), and every alert has a test there."""

import shutil
import subprocess
from pathlib import Path

import yaml

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
