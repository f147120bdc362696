"""What the benchmarks share."""

import argparse
import json
import sys
from pathlib import Path

from mailstack.inventory import load_for
from mailstack.lab import Lab


def running_lab(inventory: str) -> Lab:
    """The lab of ``inventory``, once every host of it answers; otherwise exit with what to do."""
    lab = Lab(load_for(inventory))
    if not all(row["ssh"] == "ready" for row in lab.status()):
        print("the lab is not up: run `make lab` first", file=sys.stderr)
        raise SystemExit(2)
    return lab


def arguments(doc: str, on_running_lab: bool = True) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the help, ``--json``, and the
    ``--inventory`` of the running lab it measures."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the figures to this file")
    if on_running_lab:
        parser.add_argument("--inventory", default="inventories/lab.py")
    return parser


def write_json(path: str | None, figures) -> None:
    """The figures for scripts, when ``--json`` named a file."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
