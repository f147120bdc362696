"""What the test tiers share: project paths and running the deploy as an operator does."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(PROJECT.glob("inventories/*.py"))
LAB_INVENTORY = PROJECT / "inventories" / "lab.py"
PYINFRA = Path(sys.executable).with_name("pyinfra")
DEPLOY_TIMEOUT = 2400  # a hung deploy fails the tests instead of holding CI until its limit; lab-drbd's first
# deploy, its mx pair two QEMU guests under TCG, takes about 30 minutes (1,200 s cut it off)


CI_HOUR = 58 * 60  # .ci/run's budget is 60 minutes: two are left for the teardown and for noise


def skip_unless_ci_has_time(share: float, what: str) -> None:
    """In CI (.ci/run sets ``MAILSTACK_CI_STARTED``), skip ``what`` unless it would end within
    CI's hour. Under TCG a costly part takes about ``share`` of the time CI took to reach it,
    whatever the machine's speed that day (docs/lab.md), so the run's own pace says what it would
    cost. These parts run last (``costly`` and ``staging`` marks), so nothing else waits behind
    them. By hand everything runs."""
    started = int(os.environ.get("MAILSTACK_CI_STARTED", 0))
    elapsed = time.time() - started
    if started and elapsed * (1 + share) > CI_HOUR:
        pytest.skip(f"{what} not run: CI reached it after {elapsed / 60:.0f} min and at this pace it would take"
                    f" about {share * elapsed / 60:.0f} more, past its hour (.ci/run)")


def lab_variant(folder: Path, replacements: dict[str, str]) -> Path:
    """A copy of the lab's inventory in ``folder``, with the same secrets and hosts, whose YAML
    has each key of ``replacements`` replaced by its value (every text must be present)."""
    settings = LAB_INVENTORY.with_suffix(".yml").read_text()
    for old, new in replacements.items():
        assert old in settings, old
        settings = settings.replace(old, new)
    (folder / "lab.yml").write_text(settings)
    (folder / "secrets").symlink_to(LAB_INVENTORY.parent / "secrets")
    (folder / "lab.py").write_text(LAB_INVENTORY.read_text())
    return folder / "lab.py"


def run_deploy(inventory: Path = LAB_INVENTORY, *options: str) -> subprocess.CompletedProcess:
    """Run the whole deploy with pyinfra's CLI, as an operator does."""
    return subprocess.run(
        [PYINFRA, "-y", "--json", *options, str(inventory), "deploys/mail_cluster.py"],
        cwd=PROJECT, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT,
    )


def deploy(inventory: Path = LAB_INVENTORY, *options: str) -> dict:
    """A deploy that must succeed; its JSON report."""
    result = run_deploy(inventory, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def changes(report: dict) -> dict[str, list[str]]:
    """The operations of a deploy's JSON report that changed something, with those hosts."""
    return {op["name"]: op["success"] for op in report["results"]["operations"] if op["success"]}


def changed_hosts(report: dict) -> set[str]:
    """The hosts on which a deploy's JSON report shows a change."""
    return {name for hosts in changes(report).values() for name in hosts}


def verify(inventory: Path) -> None:
    """``mailstack verify`` (tests/infra) passes on every host of ``inventory``; its summary is printed."""
    result = subprocess.run([sys.executable, "-m", "mailstack.cli", "verify", "--inventory", str(inventory)],
                            cwd=PROJECT, capture_output=True, text=True)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:]


def ssh(lab, host: str, command: str, input: str | None = None) -> str:
    """Run a command on a lab host with the lab's key; fail the test if it fails."""
    result = lab.run(host, command, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout
