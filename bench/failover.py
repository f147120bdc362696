"""How long clients of the lab's virtual IP are cut off when part of the front fails.

    make lab && .venv/bin/python bench/failover.py [--repeat N]

For each way an lb host can fail (its HAProxy stopped, the host crashed, its link pulled)
and for a crashed mx host, a client submits mail through the virtual IP in a loop while a
probe dials the address every 50 ms. Printed per run: seconds until the address answered
again (takeover) and seconds the submitting client went without an accepted message
(outage). After each run the cluster is made whole again.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import running_lab  # noqa: E402
from mailstack.lab import Lab, mailcheck  # noqa: E402
from tests.lab import clients, faults  # noqa: E402


def scenarios(lab: Lab) -> dict:
    lb, mx = lab.config.hosts_in("lb")[0], lab.config.hosts_in("mx")[0]
    return {
        f"{lb}: HAProxy stopped": lambda: lab.run(lb, "systemctl stop haproxy"),
        f"{lb}: host crashed": lambda: faults.crash(lab, lb),
        f"{lb}: link pulled": lambda: faults.set_link(lab, lb, up=False),
        f"{mx}: host crashed": lambda: faults.crash(lab, mx),
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


def _figures(values: list[float]) -> str:
    return f"median {statistics.median(values):5.2f} (" + " ".join(f"{value:.2f}" for value in values) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--inventory", default="inventories/lab.py")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    client = mailcheck.cluster(lab, mailcheck.pebble_root(lab))
    print(f"{'scenario':28} {'takeover, s':32} {'client outage, s':32}")
    for name, fail in scenarios(lab).items():
        takeovers, outages = [], []
        for _ in range(options.repeat):
            faults.make_whole(lab)
            takeover, outage = measure(lab, client, fail)
            takeovers.append(takeover)
            outages.append(outage)
        faults.make_whole(lab)
        print(f"{name:28} {_figures(takeovers):32} {_figures(outages):32}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
