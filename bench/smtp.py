"""Messages per second over SMTP on the lab: the whole pipeline through the virtual IP against
the active mx host's own loopback listener, with replication to the peer and CPU per message.

    make lab && .venv/bin/python bench/smtp.py [--messages 1000] [--sessions 10] [--rounds 2] [--json FILE]

Postfix's load generator (``smtp-source``) on the active mx host sends N messages of 4 KiB to
bob over S parallel sessions, a new connection per message as other mail servers make them:
to ``127.0.0.1:25`` (Postfix, Rspamd, LMTP into Dovecot; no HAProxy, no PROXY header) and to
the virtual IP's port 25 (the same behind HAProxy and postscreen), interleaved, ``--rounds``
times each. Printed per path: messages accepted per second, messages per second until the
peer mx host held every one (replication keeping up), and CPU milliseconds per message of
each component (systemd's accounting of its unit) on the mx hosts and the lb host.
"""

import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack.lab import Lab  # noqa: E402

SIZE = 4096
UNITS = {"postfix": "system-postfix.slice/postfix@-.service", "rspamd": "rspamd.service",
         "redis": "redis-server.service", "dovecot": "dovecot.service", "haproxy": "haproxy.service"}
"""The components whose CPU is counted, by their unit's cgroup below system.slice, on every
host where it runs."""


# Each unit's cgroup counts its CPU time in cgroup v2's cpu.stat, with or without CPU
# accounting (off in the lab's containers, which see the v2 hierarchy under "unified").
USAGE = """for unit in {units}; do
    stat=/sys/fs/cgroup/unified/system.slice/$unit/cpu.stat
    [ -e "$stat" ] || stat=/sys/fs/cgroup/system.slice/$unit/cpu.stat
    awk '$1 == "usage_usec" {{print $2}}' "$stat" 2>/dev/null || echo 0
done"""


def cpu_seconds(lab: Lab) -> dict[str, float]:
    """CPU seconds each component has used so far, summed over the mx and lb hosts."""
    used = dict.fromkeys(UNITS, 0.0)
    for host in [*lab.config.hosts_in("mx"), *lab.config.hosts_in("lb")]:
        values = lab.run(host, USAGE.format(units=" ".join(UNITS.values()))).stdout.split()
        for component, value in zip(UNITS, values, strict=True):
            used[component] += int(value) / 1e6
    return used


def held_on(lab: Lab, host: str, user: str, tag: str) -> int:
    found = lab.run(host, f"doveadm search -u {user} mailbox INBOX header subject '{tag}' | wc -l").stdout
    return int(found.strip() or 0)


def one_round(lab: Lab, target: str, messages: int, sessions: int) -> dict:
    active, peer = lab.config.hosts_in("mx")
    domain = lab.config.domains[0].name
    user, tag = f"bob@{domain}", f"smtp bench {uuid.uuid4().hex[:8]}"
    before = cpu_seconds(lab)
    started = time.monotonic()
    sent = lab.run(active, f"smtp-source -s {sessions} -m {messages} -l {SIZE} -f alice@{domain} -t {user}"
                           f" -S '{tag}' {target}:25", timeout=3600)
    if sent.returncode != 0:
        raise SystemExit(f"smtp-source on {active} failed: {sent.stderr.strip()[-500:]}")
    accepted = time.monotonic() - started
    while (replicated := held_on(lab, peer, user, tag)) < messages:
        if time.monotonic() - started > accepted + 600:
            raise SystemExit(f"{peer} holds {replicated} of {messages} messages 10 minutes after the last was sent")
        time.sleep(0.5)
    on_peer = time.monotonic() - started
    after = cpu_seconds(lab)
    delivered = held_on(lab, active, user, tag)
    lab.run(active, f"doveadm expunge -u {user} mailbox INBOX header subject '{tag}'")
    return {"accepted_per_s": messages / accepted, "on_peer_per_s": messages / on_peer, "delivered": delivered,
            "cpu_ms_per_message": {name: (after[name] - before[name]) * 1000 / messages for name in UNITS}}


def summary(rounds: list[dict]) -> dict:
    return {"accepted_per_s": statistics.median(one["accepted_per_s"] for one in rounds),
            "on_peer_per_s": statistics.median(one["on_peer_per_s"] for one in rounds),
            "cpu_ms_per_message": {name: statistics.median(one["cpu_ms_per_message"][name] for one in rounds)
                                   for name in UNITS},
            "rounds": rounds}


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="messages per round (default 1000)")
    parser.add_argument("--sessions", type=int, default=10, help="parallel SMTP sessions (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per path, interleaved (default 2)")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    paths = {"active mx, 127.0.0.1:25": "127.0.0.1", "virtual IP, port 25": str(lab.config.cluster.virtual_ip)}
    rounds: dict[str, list[dict]] = {name: [] for name in paths}
    for number in range(options.rounds):
        for name, target in paths.items():
            print(f"round {number + 1}/{options.rounds}: {name}", file=sys.stderr, flush=True)
            rounds[name].append(one_round(lab, target, options.messages, options.sessions))
    figures = {name: summary(done) for name, done in rounds.items()}
    print(f"{options.messages} messages of {SIZE // 1024} KiB, {options.sessions} sessions, median of"
          f" {options.rounds}:")
    print(f"{'path':26} {'accepted/s':>10} {'on peer/s':>10}   CPU ms per message: "
          + " ".join(f"{name:>8}" for name in UNITS))
    for name, row in figures.items():
        print(f"{name:26} {row['accepted_per_s']:10.1f} {row['on_peer_per_s']:10.1f}   {'':20} "
              + " ".join(f"{row['cpu_ms_per_message'][unit]:8.2f}" for unit in UNITS))
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
