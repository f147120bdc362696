"""Messages per second over SMTP on the lab: the whole pipeline through the virtual IP, the
active mx host's own loopback listener, and a stock single host, side by side in one run, into
an empty mailbox and into one that already holds many messages, with replication to the peer
and CPU per message.

    make lab && .venv/bin/python bench/smtp.py [--messages 1000] [--sessions 10] [--rounds 2]
                                               [--held 10000] [--json FILE]

Postfix's load generator (``smtp-source``) sends N messages of 4 KiB to bob over S parallel
sessions, a new connection per message as other mail servers make them, along three paths,
interleaved, ``--rounds`` times each, once to bob (a mailbox the lab leaves nearly empty) and
once to alice, whose INBOX the bench first fills with ``--held`` messages of the same size
(``doveadm import``, replicated to the peer before the rounds start, expunged at the end):

  stock       a container the bench makes from the lab's image (the same Debian packages,
              nothing of mailstack): Debian's own Postfix, Rspamd (milter) with Redis and
              Dovecot (LMTP into Maildir), changed only as far as needed to join them; the
              sender runs on it, against its 127.0.0.1:25
  loopback    the active mx host, sender on it, to its own 127.0.0.1:25: Postfix, Rspamd,
              LMTP into Dovecot, no HAProxy and no PROXY header
  virtual IP  the same sender to the virtual IP's port 25: HAProxy and postscreen as well

Printed per path and mailbox: messages accepted per second; messages per second until every copy was
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

REPLICATE = "{{ doveadm replicator replicate {user} 2>/dev/null || true; }}"
"""What doveadm changes in a mailbox does not wake the replicator (the stock host has none)."""

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


def inbox_size(lab: Lab, host, user: str) -> int:
    """Messages in ``user``'s INBOX: its Maildir's files. Not by asking Dovecot: a mailbox it
    opens on the peer before the first sync reaches it is made there anew, with an identity of
    its own, and the two copies of the INBOX then never sync again."""
    found = lab.run(host, f"home=$(doveadm user -f home {user}) &&"
                          f" find \"$home/Maildir/cur\" \"$home/Maildir/new\" -maxdepth 1 -type f 2>/dev/null | wc -l")
    return int(found.stdout.strip() or 0)


def wait_for_size(lab: Lab, host, user: str, count: int) -> None:
    """Poll ``host`` until ``user``'s INBOX holds ``count`` messages (more arriving, or fewer as
    an expunge replicates); give up after ``STALL`` seconds without coming closer."""
    closest, progressed = None, time.monotonic()
    while (held := inbox_size(lab, host, user)) != count:
        if closest is None or abs(held - count) < closest:
            closest, progressed = abs(held - count), time.monotonic()
        elif time.monotonic() - progressed > STALL:
            raise SystemExit(f"{host}: {user}'s INBOX holds {held} messages, not {count}; no closer in {STALL} s")
        time.sleep(0.5)


def mbox(count: int, tag: str) -> str:
    """``count`` messages of about ``SIZE`` bytes each in one mbox file, subject ``tag``."""
    body = ("x" * 75 + "\n") * (SIZE // 76)
    return "".join(f"From bench@bench.invalid Thu Dec  3 12:00:00 2026\nFrom: bench@bench.invalid\n"
                   f"Subject: {tag} {number}\nMessage-ID: <{number}.{tag.split()[-1]}@bench.invalid>\n\n{body}\n"
                   for number in range(count))


def fill(lab: Lab, host, user: str, count: int, tag: str) -> None:
    """Put ``count`` messages into ``user``'s INBOX on ``host`` with Dovecot's own import, so
    its indexes and quota account for them as for delivered mail."""
    made = lab.run(host, f"install -d -m 0777 /tmp/bench-fill && cat > /tmp/bench-fill/inbox"
                         f" && chmod 0644 /tmp/bench-fill/inbox"
                         f" && doveadm import -u {user} mbox:/tmp/bench-fill:INBOX=/tmp/bench-fill/inbox '' all"
                         f" && {REPLICATE.format(user=user)}; status=$?; rm -rf /tmp/bench-fill; exit $status",
                   input=mbox(count, tag), timeout=1800)
    if made.returncode != 0:
        raise SystemExit(f"{host}: filling {user}'s INBOX failed: {made.stderr.strip()[-500:]}")


def expunge(lab: Lab, host, user: str, tag: str) -> None:
    lab.run(host, f"doveadm expunge -u {user} mailbox INBOX header subject '{tag}'; {REPLICATE.format(user=user)}",
            timeout=600)


def one_round(lab: Lab, route: Route, user: str, messages: int, sessions: int) -> dict:
    domain = lab.config.domains[0].name
    tag = f"smtp bench {uuid.uuid4().hex[:8]}"
    held = inbox_size(lab, route.last_copy, user)
    before = cpu_seconds(lab, route.hosts)
    started = time.monotonic()
    sent = lab.run(route.sender, f"smtp-source -s {sessions} -m {messages} -l {SIZE} -f alice@{domain} -t {user}"
                                 f" -S '{tag}' {route.target}:25", timeout=3600)
    if sent.returncode != 0:
        raise SystemExit(f"smtp-source failed: {sent.stderr.strip()[-500:]}")
    accepted = time.monotonic() - started
    wait_for_size(lab, route.last_copy, user, held + messages)
    all_stored = time.monotonic() - started
    after = cpu_seconds(lab, route.hosts)
    delivered = held_on(lab, route.sender, user, tag)
    expunge(lab, route.sender, user, tag)
    wait_for_size(lab, route.last_copy, user, held)  # the next round starts from the same mailbox
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
    parser.add_argument("--held", type=int, default=10000, help="messages in the full mailbox (default 10000)")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    active, peer = lab.config.hosts_in("mx")
    cluster = [*lab.config.hosts_in("mx"), *lab.config.hosts_in("lb")]
    domain = lab.config.domains[0].name
    empty, full = f"bob@{domain}", f"alice@{domain}"
    mailboxes = {"empty": empty, f"{options.held:,} held": full}
    fill_tag = f"smtp bench fill {uuid.uuid4().hex[:8]}"
    stock = start_stock_host(lab)
    try:
        routes = {"stock single host": Route(stock, "127.0.0.1", [stock], stock),
                  "active mx, 127.0.0.1:25": Route(active, "127.0.0.1", cluster, peer),
                  "virtual IP, port 25": Route(active, str(lab.config.cluster.virtual_ip), cluster, peer)}
        print(f"filling {full}'s INBOX with {options.held} messages on {active} (replicated to {peer})"
              f" and on {stock.name}", file=sys.stderr, flush=True)
        for host in (active, stock):
            fill(lab, host, full, options.held, fill_tag)
        wait_for_size(lab, peer, full, inbox_size(lab, active, full))
        rounds: dict[str, list[dict]] = {f"{path}, {mailbox}": [] for path in routes for mailbox in mailboxes}
        for number in range(options.rounds):
            for path, route in routes.items():
                for mailbox, user in mailboxes.items():
                    print(f"round {number + 1}/{options.rounds}: {path}, {mailbox}", file=sys.stderr, flush=True)
                    rounds[f"{path}, {mailbox}"].append(one_round(lab, route, user, options.messages, options.sessions))
    finally:
        expunge(lab, active, full, fill_tag)
        stock.remove()
    figures = {name: summary(done) for name, done in rounds.items()}
    print(f"{options.messages} messages of {SIZE // 1024} KiB, {options.sessions} sessions, median of"
          f" {options.rounds}; stored: every copy (the cluster's: on the peer mx too)")
    print(f"{'path, mailbox':42} {'accepted/s':>10} {'stored/s':>9}  CPU ms per message: "
          + " ".join(f"{name:>8}" for name in UNITS))
    for name, row in figures.items():
        print(f"{name:42} {row['accepted_per_s']:10.1f} {row['stored_per_s']:9.1f}  {'':20}"
              + " ".join(f"{row['cpu_ms_per_message'][unit]:8.2f}" for unit in UNITS))
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
