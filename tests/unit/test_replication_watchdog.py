"""The replication watchdog's script, run against ss's and doveadm's own output."""

import subprocess

import pytest

from deploys.replication_watchdog import REPLICATION_WATCHDOG, SCRIPT
from mailstack.component import Target
from mailstack.inventory import load_for
from tests.support import LAB_INVENTORY

CONNECTIONS = """\
0      0      10.77.0.21:48682 10.77.0.22:12345 users:(("doveadm-server",pid=101,fd=15))
\t bbr wscale:10,10 rto:204 bytes_sent:517 bytes_acked:518 lastsnd:61000 lastrcv:61000 lastack:61000 snd_wnd:65536
0      0      10.77.0.21:48690 10.77.0.22:12345 users:(("doveadm-server",pid=102,fd=15))
\t bbr wscale:10,10 rto:204 bytes_sent:1220023 lastsnd:6500 lastrcv:90000 lastack:16 snd_wnd:97280
"""
"""Two syncs: one silent both ways for 61 s, one that sent 6.5 s ago."""

STATUS = """\
username\tpriority\tfast sync\tfull sync\tsuccess sync\tfailed
alice@mailstack.test\tnone\t00:00:45\t02:00:00\t00:10:00\ty
bob@mailstack.test\tnone\t00:00:10\t02:00:00\t00:10:00\ty
carol@mailstack.test\tnone\t00:00:45\t02:00:00\t00:00:45\t-
"""
"""alice's last sync failed 45 s after it began, bob's began 10 s ago and failed already."""


def fake(folder, name: str, body: str) -> None:
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o755)


@pytest.mark.parametrize("peer_answers", [True, False], ids=["peer up", "peer down"])
def test_a_silent_sync_is_killed_and_failed_ones_asked_again_while_the_peer_answers(tmp_path, peer_answers):
    config = load_for(LAB_INVENTORY)
    script = next(content for managed, content in REPLICATION_WATCHDOG.render(Target(config, "mx1")).items()
                  if managed.path == SCRIPT)
    calls = tmp_path / "calls"
    (tmp_path / "bin").mkdir()
    fake(tmp_path / "bin", "ss", f"cat <<'EOF'\n{CONNECTIONS}EOF")
    fake(tmp_path / "bin", "doveadm", f"case \"$*\" in *' status '*) cat <<'EOF'\n{STATUS}EOF\n"
                                      f";; *) echo \"$*\" >> {calls} ;; esac")
    fake(tmp_path / "bin", "timeout", "exit 0" if peer_answers else "exit 1")
    (tmp_path / "watchdog").write_text(script)
    said = subprocess.run(
        ["bash", "-c", f'kill() {{ echo "kill $*" >> {calls}; }}; export -f kill; . "$0"', tmp_path / "watchdog"],
        env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"}, capture_output=True, text=True, check=True,
    ).stdout
    asked = ["replicator replicate alice@mailstack.test"] if peer_answers else []
    assert calls.read_text().splitlines() == ["kill -KILL 101", *asked]
    assert "killing its process 101" in said
