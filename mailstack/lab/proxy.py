"""The apt proxy on the bridge address: the lab's only way to Debian's archive.

apt-cacher-ng runs with a configuration of our own (no Debian backend remapping, whose
mirror list names hosts that do not resolve here); it forwards to the mirror each
request names and caches under STATE/proxy, which ``lab down`` keeps.
"""

import os
import signal
import time

from .system import STATE, processes, run

PROXY = STATE / "proxy"
PORT = 3142


def start(address: str) -> None:
    if _pids():
        return
    for folder in ("conf", "cache", "log"):
        (PROXY / folder).mkdir(parents=True, exist_ok=True)
    (PROXY / "conf/acng.conf").write_text(
        f"CacheDir: {PROXY / 'cache'}\n"
        f"LogDir: {PROXY / 'log'}\n"
        f"Port: {PORT}\n"
        f"BindAddress: {address}\n"
        "ForeGround: 0\n"
        "ExThreshold: 4\n"
    )
    run("apt-cacher-ng", "-c", PROXY / "conf")


def stop() -> None:
    for pid in _pids():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in _pids():
        os.kill(pid, signal.SIGKILL)


def _pids() -> list[int]:
    return processes("-c", str(PROXY / "conf"))
