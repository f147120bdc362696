"""How long the cluster's deploy takes on the lab: onto new hosts, and again with nothing to do.

    .venv/bin/python bench/converge.py [--json FILE]

Twice, side by side: with images of a bare Debian (``MAILSTACK_LAB_PRELOAD=no``: the first
deploy installs every package, as on a production host), then with the lab's usual images,
which carry the cluster's packages (``mailstack/lab/images.py``: the first deploy configures
them; apt still runs for each). Each time the lab is taken down, its hosts are made anew
(``mailstack lab up``, which also deploys the lab's own services; an image not cached is
built first, and not counted), and ``deploys/mail_cluster.py`` runs twice, its output read as
it comes. A host's time is the sum, over the operations, of the time from
an operation's start to that host's result: what the host spent working, not what it waited
for slower hosts. The total is the run's wall-clock time. Printed: each host's first deploy
on either image and its re-run; then the operations of the usual first deploy that took
longest, with the host that finished each last. The lab is left up, on its usual images.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import arguments, write_json  # noqa: E402
from mailstack.lab.system import STATE  # noqa: E402

BIN = ROOT / ".venv/bin"
INVENTORY = "inventories/lab.py"
OPERATION = re.compile(r"--> Starting operation: (.*?)\s*$")
RESULT = re.compile(r"^\s+\[(\S+)\]\s+(Success|No changes|Error)")


def deploy() -> dict:
    """Run the cluster's deploy, timing each operation and each host's share of it."""
    command = [BIN / "pyinfra", "-y", INVENTORY, "deploys/mail_cluster.py"]
    started = time.monotonic()
    hosts: dict[str, float] = defaultdict(float)
    operations: list[dict] = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        for line in run.stdout:
            now = time.monotonic()
            if found := OPERATION.search(line):
                operations.append({"name": found[1], "started": now - started, "last": None, "seconds": 0.0})
            elif (found := RESULT.match(line)) and operations:
                operation = operations[-1]
                hosts[found[1]] += now - started - operation["started"]
                operation.update(last=found[1], seconds=now - started - operation["started"])
    if run.returncode:
        raise SystemExit(f"the deploy failed (exit {run.returncode}); run it by hand to see why")
    return {"seconds": time.monotonic() - started, "hosts": dict(hosts), "operations": operations}


def converge(preload: bool) -> dict:
    """Hosts made anew from images with or without the packages, then two deploys."""
    environment = {**os.environ, "MAILSTACK_LAB_PRELOAD": "yes" if preload else "no"}
    subprocess.run([BIN / "mailstack", "lab", "down"], cwd=ROOT, check=True)
    shutil.rmtree(STATE / "hosts", ignore_errors=True)
    subprocess.run([BIN / "python", "-c", "from mailstack.lab import images; images.base_image(); images.vm_image()"],
                   cwd=ROOT, check=True, env=environment)
    started = time.monotonic()
    subprocess.run([BIN / "mailstack", "lab", "up"], cwd=ROOT, check=True, env=environment)
    up = time.monotonic() - started
    return {"lab_up": up, "first": deploy(), "again": deploy()}


def report(bare: dict, usual: dict) -> None:
    print(f"\n{'seconds':10} {'first, bare':>12} {'first, usual':>13} {'ratio':>6} {'re-run':>7}")
    for name, seconds in sorted(bare["first"]["hosts"].items(), key=lambda item: -item[1]):
        now = usual["first"]["hosts"].get(name, 0)
        print(f"{name:10} {seconds:12.1f} {now:13.1f} {seconds / now:6.1f} {usual['again']['hosts'].get(name, 0):7.1f}")
    print(f"{'wall clock':10} {bare['first']['seconds']:12.1f} {usual['first']['seconds']:13.1f}"
          f" {bare['first']['seconds'] / usual['first']['seconds']:6.1f} {usual['again']['seconds']:7.1f}")
    print(f"{'lab up':10} {bare['lab_up']:12.1f} {usual['lab_up']:13.1f}")
    print("\nlongest operations of the usual first deploy:")
    for operation in sorted(usual["first"]["operations"], key=lambda item: -item["seconds"])[:12]:
        print(f"{operation['seconds']:6.1f}  {operation['name']} (last: {operation['last']})")


def main() -> int:
    parser = arguments(__doc__, on_running_lab=False)
    options = parser.parse_args()
    figures = {"bare": converge(preload=False), "usual": converge(preload=True)}
    report(**figures)
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
