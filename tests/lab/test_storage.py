"""Storage on the lab's store1, a QEMU guest with a real kernel: RAID10 for /var/vmail.

The storage checks are ``mailstack.storage_rules.md_health`` on the ``MdArrays`` fact, which
tests/infra/test_storage.py runs on any inventory.
"""

import secrets
import time

import pytest

from facts.mdadm import MdArrays
from mailstack import storage_rules
from tests.support import lab_variant, run_deploy, ssh

pytestmark = pytest.mark.lab
STORE = "store1"


def raid(lab):
    return lab.config.hosts[STORE].storage.mdraid


def health(lab) -> list[str]:
    return storage_rules.md_health(raid(lab), MdArrays().process(ssh(lab, STORE, MdArrays().command()).splitlines()))


def wait_until_healthy(lab, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while problems := health(lab):
        assert time.monotonic() < deadline, problems
        time.sleep(2)


def test_array_survives_a_restart_under_its_name_with_the_data(lab):
    wait_until_healthy(lab)
    canary = secrets.token_hex(16)
    ssh(lab, STORE, f"echo {canary} > {raid(lab).mount_point}/canary && sync")
    lab.restart(STORE)
    assert ssh(lab, STORE, f"cat {raid(lab).mount_point}/canary").strip() == canary
    source = ssh(lab, STORE, f"findmnt -n -o SOURCE {raid(lab).mount_point}").strip()
    assert source == ssh(lab, STORE, f"readlink -f {storage_rules.array_device(raid(lab))}").strip()
    wait_until_healthy(lab)


def test_a_failed_member_is_named_by_the_check_until_it_is_back(lab):
    wait_until_healthy(lab)
    device, member = storage_rules.array_device(raid(lab)), raid(lab).devices[1]
    ssh(lab, STORE, f"mdadm {device} --fail {member}")
    problems = health(lab)
    assert problems and member in problems[0], problems
    ssh(lab, STORE, f"mdadm {device} --remove {member} && mdadm {device} --add {member}")
    wait_until_healthy(lab)


def test_a_disk_with_a_filesystem_stops_the_deploy_before_any_disk_is_touched(lab, tmp_path):
    """store1's two spare disks as a new array, one of them holding a filesystem."""
    ssh(lab, STORE, "wipefs -a -q /dev/vdf /dev/vdg && mkfs.ext4 -q -L precious /dev/vdf")
    variant = lab_variant(
        tmp_path,
        {
            "mdraid: {devices: [/dev/vdb, /dev/vdc, /dev/vdd, /dev/vde]}":
                "mdraid: {name: scratch, level: 1, devices: [/dev/vdf, /dev/vdg], mount_point: /srv/scratch}"
        },
    )
    before = ssh(lab, STORE, "wipefs -n /dev/vdg; cat /proc/mdstat")
    result = run_deploy(variant, "--limit", STORE)
    assert result.returncode != 0
    assert "storage.mdraid: /dev/vdf holds ext4; list it in wipe to destroy that" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert ssh(lab, STORE, "blkid -s LABEL -o value /dev/vdf").strip() == "precious"
    assert ssh(lab, STORE, "wipefs -n /dev/vdg; cat /proc/mdstat") == before

