"""What the benchmarks share."""

import sys

from mailstack.inventory import load_for
from mailstack.lab import Lab


def running_lab(inventory: str) -> Lab:
    """The lab of ``inventory``, once every host of it answers; otherwise exit with what to do."""
    lab = Lab(load_for(inventory))
    if not all(row["ssh"] == "ready" for row in lab.status()):
        print("the lab is not up: run `make lab` first", file=sys.stderr)
        raise SystemExit(2)
    return lab
