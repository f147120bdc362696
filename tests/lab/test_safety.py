"""A configuration Postfix rejects never goes live: the deploy stops with Postfix's message."""

import pytest

from mailstack.config import RELEASES
from mailstack.lab.mailcheck import message
from tests.support import LAB_INVENTORY, changes, deploy, lab_variant, run_deploy, ssh

pytestmark = pytest.mark.lab
LAB_SETTINGS = LAB_INVENTORY.with_suffix(".yml").read_text()


@pytest.fixture
def broken_inventory(tmp_path):
    """The lab's inventory with one main.cf setting Postfix does not know."""
    return lab_variant(tmp_path, {"mail:\n": 'mail:\n  postfix_extra: {smtpd_no_such_setting: "yes"}\n'})


def test_rejected_postfix_setting_stops_the_deploy_and_mail_keeps_flowing(lab, broken_inventory, vip):
    before = ssh(lab, "mx1", "sha256sum /etc/postfix/main.cf")
    result = run_deploy(broken_inventory, "--limit", "mx1")
    assert result.returncode != 0
    assert "unused parameter: smtpd_no_such_setting=yes" in result.stdout + result.stderr
    assert ssh(lab, "mx1", "sha256sum /etc/postfix/main.cf") == before
    mail = message(vip.user("alice"), vip.user("bob"))
    vip.send("alice", mail)
    assert b"hello" in vip.wait_for("bob", mail["Subject"])
    report = deploy(LAB_INVENTORY, "--limit", "mx1")  # the real configuration: no change, nothing left half-done
    assert changes(report) == {}


def test_a_host_of_another_release_stops_the_deploy_before_any_change(lab, tmp_path):
    runs = lab.config.release_of("lb1")
    other = next(release for release in RELEASES if release != runs)
    lb1 = "  lb1: {address: 10.77.0.11, groups: [lb], vrrp_priority: 150"
    named = f"{lb1}, release: {runs}"
    variant = lab_variant(tmp_path, {named if named in LAB_SETTINGS else lb1: f"{lb1}, release: {other}"})
    before = ssh(lab, "lb1", "sha256sum /etc/haproxy/haproxy.cfg /etc/apt/apt.conf.d/90mailstack")
    result = run_deploy(variant, "--limit", "lb1")
    assert result.returncode != 0
    assert f"hosts.lb1.release: lb1 runs Debian {runs}, not {other}" in result.stdout + result.stderr
    assert ssh(lab, "lb1", "sha256sum /etc/haproxy/haproxy.cfg /etc/apt/apt.conf.d/90mailstack") == before
