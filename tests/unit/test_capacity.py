"""The limits that follow from ``mail.imap_sessions``: the lab's fit this machine, and the
mx hosts' kernel limits are only ever raised."""

import subprocess

from deploys.dovecot import RAISE, SYSCTL
from mailstack import capacity
from mailstack.inventory import load_for
from tests.support import LAB_INVENTORY

OPEN_FILES = 20_000
"""Per process on the lab's machines, which cannot be raised."""


def test_the_labs_haproxy_fits_the_open_file_limit_of_its_machine():
    """HAProxy takes two descriptors per connection, and a few for its listeners and checks."""
    assert 2 * capacity.haproxy_connections(load_for(LAB_INVENTORY)) + 200 <= OPEN_FILES


def test_kernel_limits_are_raised_never_lowered(tmp_path):
    """Each key of the file is written only where the running kernel allows less."""
    running = {"fs.inotify.max_user_instances": 128, "fs.inotify.max_user_watches": 2_000_000}
    sysctl = tmp_path / "sysctl"
    sysctl.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -n ]; then case "$2" in {"".join(f"{key}) echo {value};; " for key, value in running.items())}'
        'esac; else echo "$@" >> "$(dirname "$0")/written"; fi\n'
    )
    sysctl.chmod(0o755)
    (tmp_path / "limits.conf").write_text("# a comment\nfs.inotify.max_user_instances = 60000\n"
                                          "fs.inotify.max_user_watches = 1048576\n")
    script = RAISE.replace(SYSCTL, str(tmp_path / "limits.conf"))
    subprocess.run(["sh", "-c", script], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=True)
    assert (tmp_path / "written").read_text() == "-q -w fs.inotify.max_user_instances=60000\n"
