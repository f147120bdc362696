"""Idle IMAP sessions through the virtual IP: how many the cluster holds and what each costs.

    make lab && .venv/bin/python bench/imap_sessions.py [--sessions 9000] [--json FILE]

Clients on this machine open N sessions to the virtual IP's port 993 (TLS ends at Dovecot),
log in as the lab's users in turn, select a folder and IDLE, as mail clients keep one session
per watched folder. They come from as many addresses of 198.18.0.0/15 (RFC 2544's range for
benchmarks) as the per-address limits of the firewall and HAProxy need, so those limits stay
as configured: each address opens at most ``firewall.rate_limits.imap.concurrent`` sessions,
and no more a minute than ``new_per_minute``. While the run lasts, the lb hosts route that
range back to this machine, which holds it on its loopback (no host gets a route out).

Once every session idles and Dovecot has hibernated them, it reads the memory in use, against
the same before the run: Dovecot's processes on the active mx host (PSS, after a reload that
gave it new login processes), HAProxy's memory pools on the lb host holding the address, and
this machine's kernel slab (every end of every session: clients, lb and mx share it); and
the inotify instances and watches on the mx host. Then it wakes every session (ends IDLE,
sends a NOOP, logs out), 16 at a time: every one must answer. Printed: sessions held, setup
rate, memory per session and extrapolated to 50,000 sessions, wake-up time (p50, p95). The
lab's ceiling is this machine's open-file limit (20,000 per process): HAProxy holds two
descriptors per session (``mail.imap_sessions`` in inventories/lab.yml).
"""

import asyncio
import ipaddress
import ssl
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack.lab import Lab, mailcheck  # noqa: E402
from tests.lab.faults import vip_holder  # noqa: E402

CLIENTS = ipaddress.ip_network("198.18.0.0/15")
PRODUCTION = 50_000
OPENING_AT_ONCE = 64
"""Sessions in their TLS handshake and login at the same time, as a crowd of clients."""
WAKING_AT_ONCE = 16
FOLDER = "Bench"
"""The folder every session watches, made for the run: no mail arrives there. The lab has four
users with mailboxes on the cluster, so each holds thousands of the sessions; a message to one
user's INBOX would wake all of them at once, which no real mailbox sees."""
OPEN_WITHIN = 60
"""Seconds a session may take to open, or to answer once woken."""
HAPROXY_POOLS = ("echo 'show info' | socat stdio /run/haproxy/admin.sock"
                 " | awk -F': ' '$1 == \"PoolUsed_bytes\" {print $2}'")
INOTIFY = ("find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null | wc -l; "
           "cat /proc/[0-9]*/fdinfo/* 2>/dev/null | grep -c '^inotify wd:'")
HIBERNATE_AFTER = 30
"""Dovecot's imap_hibernate_timeout in the templates: seconds in IDLE before a session hibernates."""
HIBERNATED_WITHIN = 180
USER_IP_SESSIONS = 10
"""Dovecot's mail_max_userip_connections, left at its default."""
"""Seconds after the last session idles by which Dovecot should have hibernated them."""

# Proportional set size of Dovecot's processes (shared pages counted once across them), KiB.
DOVECOT_PSS = r"""pss=0
for pid in /proc/[0-9]*; do
    case "$(readlink $pid/exe 2>/dev/null)" in /usr/sbin/dovecot|/usr/lib/dovecot/*)
        pss=$((pss + $(awk '/^Pss:/ {s += $2} END {print s + 0}' $pid/smaps_rollup 2>/dev/null || echo 0))) ;;
    esac
done
echo "$pss"
"""


class Session:
    """One IMAP client session: logged in, INBOX selected, then IDLE until woken."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def command(self, tag: str, line: str) -> None:
        self.writer.write(f"{tag} {line}\r\n".encode())
        await self.done(tag)

    async def done(self, tag: str) -> None:
        """The tagged reply to the command ``tag``, which must be OK."""
        line = await self.until(f"{tag} ")
        if not line.startswith(f"{tag} OK"):
            raise ConnectionError(line.strip())

    async def until(self, start: str) -> str:
        while True:
            line = (await self.reader.readline()).decode(errors="replace")
            if not line:
                raise ConnectionError("closed by the server")
            if line.startswith(start):
                return line

    async def wake(self) -> float:
        """End IDLE and send a NOOP; seconds until the NOOP is answered. Then log out, as the
        client that is done (an awake session holds a process of its own)."""
        started = time.monotonic()
        self.writer.write(b"DONE\r\n")
        await self.done("i")
        await self.command("n", "NOOP")
        answered = time.monotonic() - started
        await self.close()
        return answered

    async def close(self) -> None:
        self.writer.write(b"z LOGOUT\r\n")
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass


async def open_session(client: mailcheck.Mx, source: str, user: str) -> Session:
    reader, writer = await asyncio.open_connection(
        client.address, 993, ssl=client.context, server_hostname=client.name, local_addr=(source, 0))
    session = Session(reader, writer)
    await session.until("* OK")
    password = client.passwords[user].replace("\\", "\\\\").replace('"', '\\"')
    await session.command("l", f'LOGIN "{user}" "{password}"')
    await session.command("s", f"SELECT {FOLDER}")
    writer.write(b"i IDLE\r\n")
    await session.until("+ ")
    return session


class Progress:
    """``opened 1200/9000, 310/s, 25 s left`` on one line, rewritten as sessions open."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.started = what, total, 0, time.monotonic()

    def step(self) -> None:
        self.done += 1
        if self.done % 100 and self.done != self.total:
            return
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        left = (self.total - self.done) / rate
        print(f"\r{self.what} {self.done}/{self.total}, {rate:.0f}/s, {left:.0f} s left ",
              end="", file=sys.stderr, flush=True)

    def finish(self) -> float:
        print(file=sys.stderr)
        return time.monotonic() - self.started


async def at_most(count: int, what: str, steps: list) -> tuple[list, list[str], float]:
    """Await ``steps`` (coroutines), ``count`` at a time, each within OPEN_WITHIN, counting
    them done as ``what``: their results, the failures as text, and the seconds taken."""
    gate, progress = asyncio.Semaphore(count), Progress(what, len(steps))

    async def one(step):
        async with gate:
            try:
                return await asyncio.wait_for(step, OPEN_WITHIN)
            finally:
                progress.step()

    results = await asyncio.gather(*(one(step) for step in steps), return_exceptions=True)
    seconds = progress.finish()
    return ([result for result in results if not isinstance(result, BaseException)],
            [f"{type(result).__name__}: {result}" for result in results if isinstance(result, BaseException)],
            seconds)


def users(lab: Lab) -> list[str]:
    """The users whose mailboxes are on the cluster (not those the migration still proxies)."""
    moving = set(lab.config.migration.users) if lab.config.migration else set()
    return [user for user in lab.config.lab.passwords if user not in moving]


def sources(lab: Lab, sessions: int) -> list[tuple[str, int]]:
    """Client addresses and how many sessions each opens, within the per-address limits of the
    firewall and HAProxy and Dovecot's own per user and address."""
    limit = lab.config.firewall.rate_limits.imap
    each = min(limit.concurrent, limit.new_per_minute, USER_IP_SESSIONS * len(users(lab)))
    addresses = CLIENTS.hosts()
    return [(str(next(addresses)), min(each, sessions - start)) for start in range(0, sessions, each)]


@contextmanager
def routed_clients(lab: Lab):
    """This machine answers for the whole client range; the lb hosts route it here."""
    bridge = str(lab.settings.address.ip)
    local = ["ip", "route", "replace", "local", str(CLIENTS), "dev", "lo"]
    lab_routes = lab.config.hosts_in("lb")
    _here(local)
    try:
        for lb in lab_routes:
            _checked(lab, lb, f"ip route replace {CLIENTS} via {bridge}")
        yield
    finally:
        for lb in lab_routes:
            lab.run(lb, f"ip route del {CLIENTS}")
        _here(["ip", "route", "del", "local", str(CLIENTS), "dev", "lo"])


def _here(command: list[str]) -> None:
    subprocess.run(command, check=True)


def _checked(lab: Lab, host: str, command: str) -> str:
    result = lab.run(host, command)
    if result.returncode != 0:
        raise SystemExit(f"{host}: {command}: {result.stderr.strip()}")
    return result.stdout


def memory(lab: Lab, mx: str, lb: str) -> dict[str, int]:
    """KiB in use: by Dovecot's processes on ``mx`` (PSS), by HAProxy's memory pools on ``lb``
    (what its sessions hold: the pages of its process stay allocated once used), and by the
    kernel's slab on this machine, which every lab host and the clients share: sockets, files
    and TLS state of all three ends, a bound for what the kernel spends per session."""
    slab = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("Slab:"))
    return {"mx": int(_checked(lab, mx, DOVECOT_PSS)), "lb": int(_checked(lab, lb, HAPROXY_POOLS)) // 1024,
            "kernel": int(slab.split()[1])}


def inotify(lab: Lab, host: str) -> dict[str, int]:
    """The inotify instances and watches ``host``'s processes hold: Dovecot needs one instance
    per session, hibernated or not, all under the vmail user (fs.inotify.max_user_*)."""
    instances, watches = _checked(lab, host, INOTIFY).split()
    return {"instances": int(instances), "watches": int(watches)}


def imap_processes(lab: Lab, host: str) -> int:
    return int(_checked(lab, host, "pgrep -c -x imap || true").strip() or 0)


def wait_for_hibernation(lab: Lab, host: str) -> tuple[int, float]:
    """Awake ``imap`` processes left on ``host`` once none is left or, after Dovecot's
    hibernation timeout, their number stops falling; and the seconds waited."""
    started, last = time.monotonic(), None
    while time.monotonic() - started < HIBERNATED_WITHIN:
        awake = imap_processes(lab, host)
        print(f"\rawake imap processes on {host}: {awake} ", end="", file=sys.stderr, flush=True)
        waited = time.monotonic() - started
        if awake == 0 or (awake == last and waited > HIBERNATE_AFTER + 10):
            break
        last = awake
        time.sleep(5)
    print(file=sys.stderr)
    return awake, time.monotonic() - started


def quantile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1] if len(values) > 1 else 0


def measure(lab: Lab, count: int) -> dict:
    client = mailcheck.cluster(lab, mailcheck.pebble_root(lab))
    active, lb = lab.config.hosts_in("mx")[0], vip_holder(lab)
    logins = users(lab)
    plan = [(address, logins[(index + offset) % len(logins)])
            for index, (address, each) in enumerate(sources(lab, count)) for offset in range(each)]
    for user in logins:
        _checked(lab, active, f"doveadm mailbox create -u {user} {FOLDER}")
    # New login processes, whose heaps hold nothing of earlier runs.
    _checked(lab, active, "systemctl reload dovecot && sleep 3")
    before = memory(lab, active, lb)
    with routed_clients(lab):
        loop = asyncio.new_event_loop()
        sessions, failed, seconds = loop.run_until_complete(
            at_most(OPENING_AT_ONCE, "opened", [open_session(client, source, user) for source, user in plan]))
        awake, waited = wait_for_hibernation(lab, active)
        after, watching = memory(lab, active, lb), inotify(lab, active)
        # Woken a few at a time: what one client waits, not a crowd.
        woken, unanswered, _ = loop.run_until_complete(
            at_most(WAKING_AT_ONCE, "woken", [session.wake() for session in sessions]))
        loop.close()
    for user in logins:
        _checked(lab, active, f"doveadm mailbox delete -u {user} {FOLDER}")
    held = len(sessions)
    per_session = {side: (after[side] - before[side]) / max(held, 1) for side in after}
    return {
        "asked": count, "held": held, "addresses": len({address for address, _ in plan}),
        "failed_to_open": len(failed), "first_failures": sorted(set(failed))[:5],
        "setup_seconds": seconds, "setup_per_second": held / seconds,
        "awake_imap_processes": awake, "hibernation_wait_seconds": waited,
        "answered_noop": len(woken), "unanswered": len(unanswered), "first_unanswered": sorted(set(unanswered))[:5],
        "wake_ms": {"p50": quantile(woken, 0.5) * 1000, "p95": quantile(woken, 0.95) * 1000},
        "mx": active, "lb": lb, "inotify_on_mx": watching,
        "per_session_kib": per_session,
        "at_50000_mib": {side: PRODUCTION * kib / 1024 for side, kib in per_session.items()},
    }


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--sessions", type=int, default=9000, help="idle sessions to open")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    figures = measure(lab, options.sessions)
    print(f"sessions asked / held / answering a NOOP at the end: {figures['asked']} / {figures['held']} / "
          f"{figures['answered_noop']} (from {figures['addresses']} addresses)")
    if figures["failed_to_open"] or figures["unanswered"]:
        print(f"  failed to open: {figures['failed_to_open']} {figures['first_failures']}")
        print(f"  no answer: {figures['unanswered']} {figures['first_unanswered']}")
    print(f"setup: {figures['setup_seconds']:.0f} s, {figures['setup_per_second']:.0f} sessions/s; "
          f"imap processes still awake after {figures['hibernation_wait_seconds']:.0f} s: "
          f"{figures['awake_imap_processes']}")
    print(f"inotify on {figures['mx']}: {figures['inotify_on_mx']['instances']} instances, "
          f"{figures['inotify_on_mx']['watches']} watches")
    print(f"wake-up (DONE, then NOOP answered): p50 {figures['wake_ms']['p50']:.0f} ms, "
          f"p95 {figures['wake_ms']['p95']:.0f} ms")
    print(f"{'memory':<46} {'per session':>12} {'at 50,000':>10}")
    labels = {"mx": f"Dovecot's processes on {figures['mx']} (PSS)", "lb": f"HAProxy's pools on {figures['lb']}",
              "kernel": "kernel slab, every host and the clients"}
    for side, label in labels.items():
        print(f"{label:<46} {figures['per_session_kib'][side]:>8.1f} KiB {figures['at_50000_mib'][side]:>6.0f} MiB")
    write_json(options.json, figures)
    return 0 if figures["held"] == figures["answered_noop"] == figures["asked"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
