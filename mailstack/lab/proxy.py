"""The apt proxy on the bridge address: the lab's only way to Debian's archive (and the
offline staging VMs', on their private network: one proxy per state folder).

tinyproxy forwards plain HTTP to the Debian mirror hosts only (every other host is
refused), so the lab never gets a general way out. apt-cacher-ng was tried first: with
several hosts refreshing the same index at once it left apt hanging (see docs/lab.md).
"""

import grp
import os
import pwd
import re
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from .images import mirror
from .system import STATE, processes, run

PROXY = STATE / "proxy"
PORT = 3142


def start(address: str, network: str, folder: Path = PROXY) -> None:
    conf = folder / "tinyproxy.conf"
    if _pids(conf):
        return
    folder.mkdir(parents=True, exist_ok=True)
    hosts = sorted({urlsplit(mirror()).hostname, "deb.debian.org"})
    (folder / "allowed-hosts").write_text("".join(f"^{re.escape(host)}$\n" for host in hosts))
    conf.write_text(
        "User nobody\nGroup nogroup\n"
        f"Port {PORT}\nListen {address}\nAllow {network}\n"
        "Timeout 120\nMaxClients 64\nLogLevel Warning\nSyslog Off\n"
        f"LogFile \"{folder / 'tinyproxy.log'}\"\n"
        f"Filter \"{folder / 'allowed-hosts'}\"\nFilterType ere\nFilterDefaultDeny Yes\n"
    )
    log = folder / "tinyproxy.log"
    log.touch()
    os.chown(log, *_nobody())
    run("tinyproxy", "-c", conf)


def _nobody() -> tuple[int, int]:
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def stop(folder: Path = PROXY) -> None:
    conf = folder / "tinyproxy.conf"
    for pid in _pids(conf):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pids(conf) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in _pids(conf):
        os.kill(pid, signal.SIGKILL)


def _pids(conf: Path) -> list[int]:
    return processes("-c", str(conf))
