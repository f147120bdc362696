"""Messages per second over SMTP on the lab: the whole pipeline through the virtual IP, the
active mx host's own loopback listener, and a stock single host, side by side in one run, with
replication to the peer and CPU per message.

    make lab && .venv/bin/python bench/smtp.py [--messages 1000] [--sessions 10] [--rounds 2] [--json FILE]

Postfix's load generator (``smtp-source``) sends N messages of 4 KiB to bob over S parallel
sessions, a new connection per message as other mail servers make them, along three paths,
interleaved, ``--rounds`` times each:

  stock       a container the bench makes from the lab's image (the same Debian packages,
              nothing of mailstack): Debian's own Postfix, Rspamd (milter) with Redis and
              Dovecot (LMTP into Maildir), changed only as far as needed to join them; the
              sender runs on it, against its 127.0.0.1:25
  loopback    the active mx host, sender on it, to its own 127.0.0.1:25: Postfix, Rspamd,
              LMTP into Dovecot, no HAProxy and no PROXY header
  virtual IP  the same sender to the virtual IP's port 25: HAProxy and postscreen as well

Printed per path: messages accepted per second; messages per second until every copy was
stored (the stock host's mailbox; for the cluster, the peer mx host's replica: replication
keeping up); and CPU milliseconds per message of each component (systemd's accounting of its
unit) on the hosts of the path.
"""

import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack.lab import Lab  # noqa: E402
from mailstack.lab.hosts import LabHost  # noqa: E402
from tests.lab import faults  # noqa: E402

SIZE = 4096
STALL = 120
"""Seconds without one more message stored after which a round gives up."""
UNITS = {"postfix": "system-postfix.slice/postfix@-.service", "rspamd": "rspamd.service",
         "redis": "redis-server.service", "dovecot": "dovecot.service", "haproxy": "haproxy.service"}
"""The components whose CPU is counted, by their unit's cgroup below system.slice, on every
host of the path where it runs."""

STOCK_HOST = ("stock1", "10.77.0.38")
# Debian's configuration of each package, plus what joins them: the domain's mail to Dovecot's
# LMTP for any user, Rspamd's milter (its stock proxy worker) and Redis (its stock servers).
# The key pairs the lab's image leaves out are made as the packages make them.
STOCK_SETUP = """set -e
make-ssl-cert generate-default-snakeoil --force-overwrite
cp /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/dovecot/private/dovecot.pem
cp /etc/ssl/private/ssl-cert-snakeoil.key /etc/dovecot/private/dovecot.key
groupadd -g 5000 vmail && useradd -u 5000 -g 5000 -M -d /var/vmail vmail
install -d -o vmail -g vmail /var/vmail
postconf -e 'virtual_mailbox_domains = {domain}' 'virtual_transport = lmtp:unix:private/dovecot-lmtp' \\
    'smtpd_milters = inet:localhost:11332' 'milter_default_action = accept'
cat > /etc/dovecot/local.conf <<'END'
protocols = imap lmtp
mail_location = maildir:~/Maildir
userdb {{
  driver = static
  args = uid=vmail gid=vmail home=/var/vmail/%d/%n allow_all_users=yes
}}
service lmtp {{
  unix_listener /var/spool/postfix/private/dovecot-lmtp {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
END
echo 'servers = "127.0.0.1";' > /etc/rspamd/local.d/redis.conf
systemctl enable --now redis-server rspamd dovecot postfix
timeout 120 bash -c 'until echo > /dev/tcp/127.0.0.1/11332; do sleep 0.5; done' 2>/dev/null
"""


@dataclass
class Route:
    """One path of the comparison: where the sender runs and what it connects to, the hosts
    whose components are counted, and the host whose copy of each message comes last."""

    sender: str | LabHost
    target: str
    hosts: list
    last_copy: str | LabHost


# Each unit's cgroup counts its CPU time in cgroup v2's cpu.stat, with or without CPU
# accounting (off in the lab's containers, which see the v2 hierarchy under "unified").
USAGE = """for unit in {units}; do
    stat=/sys/fs/cgroup/unified/system.slice/$unit/cpu.stat
    [ -e "$stat" ] || stat=/sys/fs/cgroup/system.slice/$unit/cpu.stat
    awk '$1 == "usage_usec" {{print $2}}' "$stat" 2>/dev/null || echo 0
done"""


def cpu_seconds(lab: Lab, hosts: list) -> dict[str, float]:
    """CPU seconds each component has used so far, summed over ``hosts``."""
    used = dict.fromkeys(UNITS, 0.0)
    for host in hosts:
        values = lab.run(host, USAGE.format(units=" ".join(UNITS.values()))).stdout.split()
        for component, value in zip(UNITS, values, strict=True):
            used[component] += int(value) / 1e6
    return used


def held_on(lab: Lab, host, user: str, tag: str) -> int:
    found = lab.run(host, f"doveadm search -u {user} mailbox INBOX header subject '{tag}' | wc -l").stdout
    return int(found.strip() or 0)


def one_round(lab: Lab, route: Route, messages: int, sessions: int) -> dict:
    domain = lab.config.domains[0].name
    user, tag = f"bob@{domain}", f"smtp bench {uuid.uuid4().hex[:8]}"
    before = cpu_seconds(lab, route.hosts)
    started = time.monotonic()
    sent = lab.run(route.sender, f"smtp-source -s {sessions} -m {messages} -l {SIZE} -f alice@{domain} -t {user}"
                                 f" -S '{tag}' {route.target}:25", timeout=3600)
    if sent.returncode != 0:
        raise SystemExit(f"smtp-source failed: {sent.stderr.strip()[-500:]}")
    accepted = time.monotonic() - started
    stored, progressed = 0, time.monotonic()
    while stored < messages:
        if (now := held_on(lab, route.last_copy, user, tag)) > stored:
            stored, progressed = now, time.monotonic()
        elif time.monotonic() - progressed > STALL:
            raise SystemExit(f"{stored} of {messages} messages stored; none more in {STALL} s")
        time.sleep(0.5)
    all_stored = time.monotonic() - started
    after = cpu_seconds(lab, route.hosts)
    delivered = held_on(lab, route.sender, user, tag)
    lab.run(route.sender, f"doveadm expunge -u {user} mailbox INBOX header subject '{tag}'")
    return {"accepted_per_s": messages / accepted, "stored_per_s": messages / all_stored, "delivered": delivered,
            "cpu_ms_per_message": {name: (after[name] - before[name]) * 1000 / messages for name in UNITS}}


def summary(rounds: list[dict]) -> dict:
    return {"accepted_per_s": statistics.median(one["accepted_per_s"] for one in rounds),
            "stored_per_s": statistics.median(one["stored_per_s"] for one in rounds),
            "cpu_ms_per_message": {name: statistics.median(one["cpu_ms_per_message"][name] for one in rounds)
                                   for name in UNITS},
            "rounds": rounds}


def start_stock_host(lab: Lab) -> LabHost:
    name, address = STOCK_HOST
    host = lab.container(name, address, lab.config.release_of(lab.config.hosts_in("mx")[0]))
    print(f"starting {name}: a single host with Debian's own Postfix, Rspamd and Dovecot", file=sys.stderr, flush=True)
    host.start(lab.settings.bridge)
    faults.wait_for(host.ssh_ready, 120, f"{name} answers SSH", 0.5)
    made = lab.run(host, STOCK_SETUP.format(domain=lab.config.domains[0].name), timeout=300)
    if made.returncode != 0:
        raise SystemExit(f"{name}: setting up the stock pipeline failed: {made.stderr.strip()[-500:]}")
    return host


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="messages per round (default 1000)")
    parser.add_argument("--sessions", type=int, default=10, help="parallel SMTP sessions (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per path, interleaved (default 2)")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    active, peer = lab.config.hosts_in("mx")
    cluster = [*lab.config.hosts_in("mx"), *lab.config.hosts_in("lb")]
    stock = start_stock_host(lab)
    try:
        routes = {"stock single host": Route(stock, "127.0.0.1", [stock], stock),
                  "active mx, 127.0.0.1:25": Route(active, "127.0.0.1", cluster, peer),
                  "virtual IP, port 25": Route(active, str(lab.config.cluster.virtual_ip), cluster, peer)}
        rounds: dict[str, list[dict]] = {name: [] for name in routes}
        for number in range(options.rounds):
            for name, route in routes.items():
                print(f"round {number + 1}/{options.rounds}: {name}", file=sys.stderr, flush=True)
                rounds[name].append(one_round(lab, route, options.messages, options.sessions))
    finally:
        stock.remove()
    figures = {name: summary(done) for name, done in rounds.items()}
    print(f"{options.messages} messages of {SIZE // 1024} KiB, {options.sessions} sessions, median of"
          f" {options.rounds}; stored: every copy (the cluster's: on the peer mx too)")
    print(f"{'path':26} {'accepted/s':>10} {'stored/s':>9}  CPU ms per message: "
          + " ".join(f"{name:>8}" for name in UNITS))
    for name, row in figures.items():
        print(f"{name:26} {row['accepted_per_s']:10.1f} {row['stored_per_s']:9.1f}  {'':20}"
              + " ".join(f"{row['cpu_ms_per_message'][unit]:8.2f}" for unit in UNITS))
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
