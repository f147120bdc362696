"""How long clients of the lab's virtual IP are cut off when part of the front fails, and
whether anything moves under steady load when nothing fails.

    make lab && .venv/bin/python bench/failover.py [--repeat N] [--steady SECONDS] [--json FILE]

For each way an lb host can fail (its HAProxy stopped, the host crashed, its link pulled)
and for the active mx host crashed or cut off, a client submits mail through the virtual IP
in a loop while a probe waits for the SMTP greeting of the address every 50 ms. Printed per
run: seconds until the address greeted again (takeover: for an mx host, a new connection
reached the standby) and seconds the submitting client went without an accepted message
(outage). After each run the cluster is made whole again. Then, with nothing failing,
several clients submit for ``--steady`` seconds: printed are the messages accepted, the
errors, the virtual IP's moves (Keepalived's transitions) and the backends HAProxy marked
down; a flapping front shows in the last two.
"""

import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack import haproxy  # noqa: E402
from mailstack.lab import Lab, mailcheck  # noqa: E402
from tests.lab import clients, faults  # noqa: E402

STEADY_CLIENTS = 4


def scenarios(lab: Lab) -> dict:
    lb, mx = lab.config.hosts_in("lb")[0], lab.config.hosts_in("mx")[0]
    return {
        f"{lb}: HAProxy stopped": lambda: lab.run(lb, "systemctl stop haproxy"),
        f"{lb}: host crashed": lambda: faults.crash(lab, lb),
        f"{lb}: link pulled": lambda: faults.set_link(lab, lb, up=False),
        f"{mx}: host crashed": lambda: faults.crash(lab, mx),
        f"{mx}: link pulled": lambda: faults.set_link(lab, mx, up=False),
    }


def measure(lab: Lab, client: mailcheck.Mx, fail) -> tuple[float, float]:
    address = str(lab.config.cluster.virtual_ip)
    with clients.SubmitLoop(client) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "mail before the failure", 0.1)
        started = time.monotonic()
        fail()
        takeover = clients.time_until_answer(address, 587, started)
        faults.wait_for(lambda: loop.accepted[-1][1] > started + takeover, 60, "mail after the failure", 0.1)
        time.sleep(2)
    return takeover, loop.outage(started)


def transitions(lab: Lab, since: int) -> int:
    """Keepalived's state changes on every lb host since the epoch second ``since``."""
    return sum(len(lab.run(lb, f"journalctl -q -o cat -t keepalived-notify --since @{since}").stdout.splitlines())
               for lb in lab.config.hosts_in("lb"))


def marked_down(lab: Lab) -> int:
    """How often HAProxy on every lb host has marked a mail backend down (``chkdown``)."""
    mx = set(lab.config.hosts_in("mx"))
    total = 0
    for lb in lab.config.hosts_in("lb"):
        servers = haproxy.servers(lab.run(lb, haproxy.SHOW_STAT).stdout)
        total += sum(int(row["chkdown"] or 0) for (_, server), row in servers.items() if server in mx)
    return total


def steady(lab: Lab, client: mailcheck.Mx, seconds: float) -> dict:
    started, downs = int(time.time()), marked_down(lab)
    with ExitStack() as running:
        loops = [running.enter_context(clients.SubmitLoop(client)) for _ in range(STEADY_CLIENTS)]
        time.sleep(seconds)
    return {"seconds": seconds, "clients": STEADY_CLIENTS,
            "accepted": sum(len(loop.accepted) for loop in loops),
            "errors": sum(len(loop.errors) for loop in loops),
            "vip_moves": transitions(lab, started), "backends_marked_down": marked_down(lab) - downs}


def _figures(values: list[float]) -> str:
    return f"median {statistics.median(values):5.2f} (" + " ".join(f"{value:.2f}" for value in values) + ")"


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--steady", type=float, default=60, help="seconds of steady load (default 60)")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    client = mailcheck.cluster(lab, mailcheck.pebble_root(lab))
    figures = {}
    print(f"{'scenario':28} {'takeover, s':32} {'client outage, s':32}")
    for name, fail in scenarios(lab).items():
        takeovers, outages = [], []
        for _ in range(options.repeat):
            faults.make_whole(lab)
            takeover, outage = measure(lab, client, fail)
            takeovers.append(takeover)
            outages.append(outage)
        faults.make_whole(lab)
        figures[name] = {"takeover": takeovers, "outage": outages}
        print(f"{name:28} {_figures(takeovers):32} {_figures(outages):32}", flush=True)
    figures["steady load"] = load = steady(lab, client, options.steady)
    print(f"\nsteady load, {load['clients']} clients for {load['seconds']:.0f} s: {load['accepted']} accepted,"
          f" {load['errors']} errors, the virtual IP moved {load['vip_moves']} times,"
          f" backends marked down {load['backends_marked_down']} times")
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
