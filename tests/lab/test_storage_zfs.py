"""ZFS on the lab's store1: the same guest, made again with empty disks from the image with ZFS,
takes a pool of two mirrors for /var/vmail. Afterwards store1 is given back as it was (its
RAID10 and all), so the other tests find the lab as ``lab.yml`` describes it.

The storage checks here are tests/infra/test_storage.py itself, run on an inventory whose
store1 has the ZFS layout.
"""

import secrets
import subprocess
import sys
import time

import pytest

from deploys import backup
from facts.zfs import ZpoolStatus
from mailstack import backup as backups
from mailstack import storage_rules
from mailstack.component import Target, render_file
from mailstack.inventory import load_for
from tests.lab import faults
from tests.support import PROJECT, changes, deploy, lab_variant, run_deploy, skip_unless_ci_has_time, ssh

pytestmark = [pytest.mark.lab, pytest.mark.costly]
STORE = "store1"
MDRAID = "mdraid: {devices: [/dev/vdb, /dev/vdc, /dev/vdd, /dev/vde]}"
POOL = (
    "zfs: {vdevs: [{devices: [/dev/vdb, /dev/vdc]}, {devices: [/dev/vdd, /dev/vde]}],"
    " datasets: [{name: vmail, mount_point: /var/vmail, quota: 200M}]}"
)


@pytest.fixture(scope="module")
def zfs_lab(lab, tmp_path_factory):
    """The fresh store1 and the inventory that gives it the pool."""
    skip_unless_ci_has_time(0.65, "the ZFS module")
    with faults.fresh_guest(lab, STORE, zfs=True):
        yield lab_variant(tmp_path_factory.mktemp("zfs"), {MDRAID: POOL})


def zfs(inventory):
    return load_for(inventory).hosts[STORE].storage.zfs


def health(lab, inventory) -> list[str]:
    pools = ZpoolStatus().process(ssh(lab, STORE, ZpoolStatus().command()).splitlines())
    return storage_rules.zfs_health(zfs(inventory), pools)


def storage_checks(inventory) -> subprocess.CompletedProcess:
    """tests/infra/test_storage.py on store1 with the ZFS layout, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/infra/test_storage.py",
         "--inventory", str(inventory)],
        cwd=PROJECT, capture_output=True, text=True, timeout=600,
    )


def test_a_disk_with_a_filesystem_stops_the_deploy_before_any_disk_is_touched(zfs_lab, lab, tmp_path):
    ssh(lab, STORE, "mkfs.ext4 -q -L precious /dev/vdf")
    variant = lab_variant(tmp_path, {MDRAID: POOL.replace("/dev/vde", "/dev/vdf")})
    result = run_deploy(variant, "--limit", STORE)
    assert result.returncode != 0
    assert "storage.zfs: /dev/vdf holds ext4; list it in wipe to destroy that" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert ssh(lab, STORE, "blkid -s LABEL -o value /dev/vdf").strip() == "precious"
    assert ssh(lab, STORE, "wipefs -n /dev/vdb /dev/vdc /dev/vdd") == ""


def test_the_pool_is_deployed_and_passes_the_storage_checks(zfs_lab):
    deploy(zfs_lab, "--limit", STORE)
    result = storage_checks(zfs_lab)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout, result.stdout[-500:]  # the pool's checks; the array's skip


def test_a_second_deploy_changes_nothing(zfs_lab):
    assert changes(deploy(zfs_lab, "--limit", STORE)) == {}


def test_the_pool_comes_back_after_a_restart_with_the_data(zfs_lab, lab):
    canary = secrets.token_hex(16)
    mount_point = zfs(zfs_lab).datasets[0].mount_point
    ssh(lab, STORE, f"echo {canary} > {mount_point}/canary && sync")
    lab.restart(STORE)
    assert ssh(lab, STORE, f"cat {mount_point}/canary").strip() == canary
    assert health(lab, zfs_lab) == []


def test_an_offline_disk_is_named_by_the_checks_until_it_is_back(zfs_lab, lab):
    ssh(lab, STORE, "zpool offline tank /dev/vdc")
    assert health(lab, zfs_lab) == ["pool tank is DEGRADED: /dev/vdc (OFFLINE)"]
    result = storage_checks(zfs_lab)
    assert result.returncode != 0 and "pool tank is DEGRADED: /dev/vdc (OFFLINE)" in result.stdout
    ssh(lab, STORE, "zpool online tank /dev/vdc")
    deadline = time.monotonic() + 120
    while problems := health(lab, zfs_lab):
        assert time.monotonic() < deadline, problems
        time.sleep(2)


def test_snapshots_are_taken_of_the_mail_dataset_only(zfs_lab, lab):
    """The hourly job run by hand; cron may have taken its own snapshots (every 15 minutes) by now."""
    ssh(lab, STORE, "/etc/cron.hourly/zfs-auto-snapshot")
    snapshots = ssh(lab, STORE, "zfs list -H -t snapshot -o name").split()
    assert {name.split("@")[0] for name in snapshots} == {"tank/vmail"}, snapshots
    assert any("@zfs-auto-snap_hourly-" in name for name in snapshots), snapshots


def test_a_backup_reads_a_snapshot_of_the_mail_dataset_and_leaves_none_behind(zfs_lab, lab):
    """mailstack-backup as the backup component renders it for an mx host whose /var/vmail is
    this pool's dataset, run on store1 into a repository on store1 itself (the way to the
    backup host is the cluster's own backups' test): the archive holds the mail under
    var/vmail, read from a snapshot that is gone afterwards, mount and all."""
    target = Target(load_for(zfs_lab), STORE)
    values = {**backup.values(target), "repository": "/srv/borg-test"}
    wanted = (backups.SCRIPT, f"{backups.SETTINGS}/borg.env", f"{backups.SETTINGS}/passphrase")
    ssh(lab, STORE, "apt-get install -y -q borgbackup >/dev/null")
    for managed in backup.BACKUP.managed_files(target.config):
        if managed.path in wanted:
            written = lab.run(STORE, f"umask 077 && mkdir -p $(dirname {managed.path}) && cat > {managed.path}"
                                     f" && chmod {managed.mode} {managed.path}",
                              input=render_file(managed, target, values))
            assert written.returncode == 0, written.stderr
    message, canary = "var/vmail/mailstack.test/bob/Maildir/cur/1.zfs-test:2,S", secrets.token_hex(16)
    ssh(lab, STORE, f"mkdir -p /$(dirname {message}) && echo {canary} > /{message}")

    ssh(lab, STORE, f"{backups.SCRIPT} run")

    archive = ssh(lab, STORE, f"{backups.SCRIPT} borg list --short --glob-archives '{backups.MAIL_ARCHIVES}*'").split()
    assert len(archive) == 1, archive
    assert ssh(lab, STORE, f"{backups.SCRIPT} borg extract --stdout ::{archive[0]} {message}").strip() == canary
    history = ssh(lab, STORE, "zpool history tank")
    assert "zfs snapshot tank/vmail@mailstack-backup" in history
    assert "zfs destroy tank/vmail@mailstack-backup" in history
    assert "@mailstack-backup" not in ssh(lab, STORE, "zfs list -H -t snapshot -o name")
    assert lab.run(STORE, "mountpoint -q /run/mailstack-backup/var/vmail").returncode != 0
