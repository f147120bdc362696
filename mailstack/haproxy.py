"""HAProxy's runtime state, read from its admin socket on an lb host."""

import csv

SHOW_STAT = "echo 'show stat' | socat stdio /run/haproxy/admin.sock"


def servers(stats: str) -> dict[tuple[str, str], dict[str, str]]:
    """Each server's row of ``show stat`` output by (proxy, server); the frontend and backend
    rows left out. A server's ``status`` is "UP", "DOWN", or "UP 1/2" while checks move it."""
    rows = csv.DictReader(stats.lstrip("# ").splitlines())
    return {(row["pxname"], row["svname"]): row for row in rows
            if row.get("svname") not in ("FRONTEND", "BACKEND", None)}
