"""How fast ``mailstack migrate sync`` copies from the old server, against how fast that server
can hand its mail out at all, on the lab.

    make lab && .venv/bin/python bench/migration.py [--heavy 3] [--json FILE]

The lab's corpus is loaded onto legacy1 (``--heavy`` of the nine users get the large mailbox of
about 29 MB, the others about 0.5 MB). Then, side by side in the same run, with the same
number of users at once (``migration.parallel``):

- the old server's raw export: every message of every user read with a plain IMAP FETCH;
- the first sync onto empty mailboxes on the cluster;
- the same sync again with nothing changed on the old server.

The copy should be limited by the source, not by mailstack: the first sync's rate against
the raw export's is the figure to watch, and the re-run's time against the first's. The
users' mailboxes on the cluster are left as the sync made them.
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack import migration  # noqa: E402
from mailstack.lab import corpus  # noqa: E402

USERS = [f"{name}@mailstack.test" for name in ("dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mike",
                                                "nina")]


def raw_export(config, login) -> tuple[float, int]:
    """Seconds to FETCH every message of every user from the old server, and the bytes read."""
    def read(user: str) -> int:
        imap = migration.source_session(config, user, login)
        try:
            return sum(folder.sizes for folder in migration.contents(imap).values())
        finally:
            imap.logout()

    started = time.monotonic()
    with ThreadPoolExecutor(config.migration.parallel) as pool:
        read_bytes = sum(pool.map(read, USERS))
    return time.monotonic() - started, read_bytes


def timed_sync(config, login) -> tuple[float, int]:
    """Seconds of a whole sync of every user (its plan included, as the command runs it), and
    the messages it added."""
    started = time.monotonic()
    done = migration.sync(config, migration.plan(config, USERS, login), login, every=3600)
    failed = [one.user for one in done if one.error]
    if failed:
        raise SystemExit(f"the sync failed for {', '.join(failed)}")
    return time.monotonic() - started, sum(one.added for one in done)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--heavy", type=int, default=3, help="users with the large mailbox (1 to 9)")
    args = parser.parse_args()
    lab = running_lab(args.inventory)
    config = lab.config
    login = migration.credentials(config)
    loaded = corpus.load(config, USERS[:args.heavy], USERS[args.heavy:], [])
    homes = " ".join(f"/var/vmail/mailstack.test/{user.split('@')[0]}" for user in USERS)
    for host in config.hosts_in("mx"):
        lab.run(host, f"rm -rf {homes}")
    export_seconds, total = raw_export(config, login)
    first_seconds, added = timed_sync(config, login)
    again_seconds, added_again = timed_sync(config, login)
    messages = sum(loaded.values())
    figures = {
        "users": len(USERS), "messages": messages, "bytes": total, "parallel": config.migration.parallel,
        "raw_export_seconds": round(export_seconds, 2), "first_sync_seconds": round(first_seconds, 2),
        "unchanged_sync_seconds": round(again_seconds, 2), "first_sync_added": added,
        "unchanged_sync_added": added_again,
    }
    print(f"{len(USERS)} users, {messages} messages, {total / 1e6:.1f} MB, {config.migration.parallel} at once\n")
    print(f"{'':34} {'seconds':>8} {'msg/s':>8} {'MB/s':>7}")
    for name, seconds in (("old server's raw export (FETCH)", export_seconds), ("first sync", first_seconds),
                          ("sync again, nothing changed", again_seconds)):
        print(f"{name:34} {seconds:8.2f} {messages / seconds:8.0f} {total / 1e6 / seconds:7.2f}")
    print(f"\nfirst sync / raw export: {first_seconds / export_seconds:.2f} of the time;"
          f" unchanged re-run / first sync: {again_seconds / first_seconds:.2f}")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
