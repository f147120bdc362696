"""The code passes the linter (imports, unused names, line length), so style never drifts."""

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([ruff, "check", "mailstack", "deploys", "facts", "tests", "inventories", "bench"],
                            cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
