"""How backup and restore times grow with the size of a mailbox, on the lab.

    make lab && .venv/bin/python bench/backup.py [--sizes 1000 4000 16000] [--json FILE]

For each size, alice gets a folder of that many 4 KiB messages (written by Dovecot on mx1 and
replicated to mx2); then, side by side in the same run: a backup by the standby (the first
with the folder, so every message is new to the repository), the same backup again with
nothing changed (what an hourly run costs), and the folder deleted and restored with
``mailstack backup restore`` (every message compared by SHA-256). The folder is removed
afterwards.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack import backup as backups  # noqa: E402
from mailstack.lab import Lab  # noqa: E402
from tests.lab import faults  # noqa: E402

FOLDER = "Bench"
# Writes COUNT Maildir messages of about 4 KiB (random text) into a new maildir at PATH.
GENERATE = """
import base64, os, sys
path, count = sys.argv[1], int(sys.argv[2])
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(path, sub), exist_ok=True)
for number in range(count):
    body = base64.encodebytes(os.urandom(3000)).decode()  # as little to compress as an attachment
    text = (f"From: a@b.test\\nTo: alice@mailstack.test\\nSubject: bench {number}\\n"
            f"Message-ID: <{number}@bench>\\n\\n{body}\\n")
    with open(os.path.join(path, "cur", f"{number}.bench:2,S"), "w") as file:
        file.write(text)
"""


def held(lab: Lab, host: str) -> int:
    found = lab.run(host, f"doveadm -f tab mailbox status -u alice@mailstack.test messages {FOLDER} 2>/dev/null")
    lines = found.stdout.split()
    return int(lines[-1]) if found.returncode == 0 and len(lines) > 1 else 0


def fill(lab: Lab, count: int) -> None:
    source = "/var/tmp/bench-maildir"
    assert lab.run("mx1", f"rm -rf {source} && python3 - {source}/.{FOLDER} {count}", input=GENERATE).returncode == 0
    imported = lab.run("mx1", f"chown -R vmail:vmail {source} && doveadm import -u alice@mailstack.test"
                              f" -s maildir:{source} '' mailbox {FOLDER} && rm -rf {source}")
    assert imported.returncode == 0, imported.stderr
    faults.wait_for(lambda: held(lab, "mx2") == count, 600, "mx2 holds the folder", 2)


def remove(lab: Lab) -> None:
    lab.run("mx1", f"doveadm mailbox delete -r -s -u alice@mailstack.test {FOLDER}")
    faults.wait_for(lambda: held(lab, "mx2") == 0, 600, "the deletion reaches mx2", 2)


def backup(lab: Lab) -> tuple[float, dict]:
    started = time.monotonic()
    result = lab.run(backups.standby(lab.config), f"{backups.SCRIPT} run")
    assert result.returncode == 0, result.stderr
    seconds = time.monotonic() - started
    figures = lab.run(backups.standby(lab.config), f"cat {backups.METRICS}").stdout
    return seconds, dict(line.split(" ", 1) for line in figures.splitlines())


def measure(lab: Lab, count: int) -> dict:
    fill(lab, count)
    first, metrics = backup(lab)
    again, _ = backup(lab)
    remove(lab)
    started = time.monotonic()
    restored = backups.restore(lab.config, "alice@mailstack.test", FOLDER)
    restore_seconds = time.monotonic() - started
    assert restored.messages == count and held(lab, "mx1") == count
    faults.wait_for(lambda: held(lab, "mx2") == count, 600, "the restored folder reaches mx2", 2)
    remove(lab)
    return {"messages": count, "read_bytes": int(metrics["mailstack_backup_original_bytes"]),
            "new_bytes": int(metrics["mailstack_backup_deduplicated_bytes"]), "backup_seconds": round(first, 1),
            "unchanged_backup_seconds": round(again, 1), "restore_seconds": round(restore_seconds, 1)}


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="messages per run")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    remove(lab)
    rows = []
    print(f"{'messages':>8} {'read MB':>8} {'new MB':>7} {'backup s':>9} {'again s':>8} {'restore s':>10}"
          f" {'restored msg/s':>15}")
    for count in options.sizes:
        row = measure(lab, count)
        rows.append(row)
        print(f"{count:8} {row['read_bytes'] / 1e6:8.1f} {row['new_bytes'] / 1e6:7.1f} {row['backup_seconds']:9.1f}"
              f" {row['unchanged_backup_seconds']:8.1f} {row['restore_seconds']:10.1f}"
              f" {count / row['restore_seconds']:15.0f}", flush=True)
    write_json(options.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
