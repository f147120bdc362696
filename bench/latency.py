"""How long a message takes from submission to the recipient's mailbox, on the lab.

    make lab && .venv/bin/python bench/latency.py [--messages 200] [--json FILE]

alice submits N messages to bob one after another through the virtual IP (port 587, a new
connection each, as mail clients do). For each: the time until the submission is accepted,
until bob's IMAP session through the virtual IP finds it (polled every 20 ms), and until the
peer mx host's Dovecot finds it (replication; polled on that host every 20 ms). Printed: p50,
p95 and the maximum of each, in milliseconds. The lab's hosts share this machine's clock.
"""

import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack.lab import Lab, mailcheck  # noqa: E402

POLL = 0.02
LIMIT = 60


def on_peer(lab: Lab, peer: str, user: str, subject: str) -> subprocess.Popen:
    """A wait on ``peer`` that prints the time (epoch seconds) its Dovecot first finds the message."""
    search = f"doveadm search -u {user} mailbox INBOX header subject '{subject}'"
    wait = f"for i in $(seq {int(LIMIT / POLL)}); do [ -n \"$({search})\" ] && break; sleep {POLL}; done; date +%s.%N"
    return subprocess.Popen(["ssh", "-F", str(lab.ssh_config_file), peer, wait], stdout=subprocess.PIPE, text=True)


def visible_over_imap(imap, subject: str) -> float:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        imap.noop()
        if imap.search(None, "SUBJECT", f'"{subject}"')[1][0]:
            return time.time()
        time.sleep(POLL)
    raise TimeoutError(f"{subject!r} not visible over IMAP after {LIMIT} s")


def measure(lab: Lab, client: mailcheck.Mx, count: int) -> dict[str, list[float]]:
    peer = lab.config.hosts_in("mx")[-1]
    run = uuid.uuid4().hex[:8]
    times: dict[str, list[float]] = {"accepted": [], "imap": [], "peer": []}
    with client.imap("bob") as imap:
        imap.select("INBOX", readonly=True)
        for number in range(count):
            subject = f"latency {run} {number}"
            waiting = on_peer(lab, peer, client.user("bob"), subject)
            time.sleep(0.3)  # the remote wait has started before the message exists
            started = time.time()
            client.send("alice", mailcheck.message(client.user("alice"), client.user("bob"), subject))
            times["accepted"].append(time.time() - started)
            times["imap"].append(visible_over_imap(imap, subject) - started)
            times["peer"].append(float(waiting.communicate(timeout=LIMIT + 10)[0]) - started)
            print(f"\r{number + 1}/{count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    lab.run("mx1", f"doveadm expunge -u {client.user('bob')} mailbox INBOX header subject 'latency {run}'")
    return times


def quantile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=200, help="messages submitted one after another")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    times = measure(lab, mailcheck.cluster(lab, mailcheck.pebble_root(lab)), options.messages)
    rows = {what: {"p50": quantile(values, 0.5) * 1000, "p95": quantile(values, 0.95) * 1000,
                   "max": max(values) * 1000} for what, values in times.items()}
    print(f"{options.messages} messages, ms:  {'p50':>7} {'p95':>7} {'max':>7}")
    labels = {"accepted": "submission accepted", "imap": "visible over IMAP", "peer": "visible on the peer mx"}
    for what, row in rows.items():
        print(f"{labels[what]:24} {row['p50']:7.0f} {row['p95']:7.0f} {row['max']:7.0f}")
    write_json(options.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
