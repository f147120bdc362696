"""``mailstack status`` without Prometheus: the same facts read from each host over SSH.

With no mon host, or when its Prometheus does not answer, status logs in to every host at
once (with the inventory's SSH settings, as ``mailstack verify`` does), runs the services'
own tools there (``ip``, HAProxy's stats socket, ``postqueue -j``, ``systemctl is-active``,
``doveadm replicator status`` or, on a Debian 13 pair, ``/proc/drbd`` and ``crm_mon``, the last
backup's metrics file, ``/proc/mdstat``, ``zpool list``) and answers status's queries with what
the exporters would have said. Protocol probes and alerts need the mon
host; each unit a host's groups run is reported instead.
"""

import json
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

from . import backup, haproxy
from .config import Config
from .ssh import ssh_config

TIMEOUT = 30
# A Debian 13 pair's state, as the node exporter's drbd collector and mailstack-metrics give it.
PRIMARY = 'node_drbd_node_role_is_primary{node="local"}'
CONNECTED = "node_drbd_connected"
UP_TO_DATE = 'node_drbd_disk_state_is_up_to_date{node="local"}'
QUORATE = "mailstack_cluster_quorate"
FAILED_ACTIONS = "mailstack_cluster_failed_actions"
UNITS = {
    "lb": ["haproxy", "keepalived"],
    "mx": ["postfix", "dovecot", "rspamd", "redis-server"],
    "mon": ["prometheus", "prometheus-alertmanager"],
    "ns": ["named"],
}


def units_of(config: Config, name: str) -> list[str]:
    """The systemd units host ``name`` runs for its groups."""
    return [unit for group in config.hosts[name].groups for unit in UNITS.get(group, [])]


def script(config: Config, name: str) -> str:
    """What to run on host ``name``, section by section (``@@ section`` lines between)."""
    groups = config.hosts[name].groups
    units = units_of(config, name)
    parts = {"units": f"systemctl is-active {' '.join(units)}" if units else "true"}
    if "lb" in groups:
        parts["vip"] = f"ip -o addr show | grep -cF ' {config.cluster.virtual_ip}/'"
        parts["haproxy"] = haproxy.SHOW_STAT
    if "mx" in groups:
        parts["queue"] = "postqueue -j"
        if config.mailboxes_on_drbd(name):
            parts["drbd"] = "cat /proc/drbd"
            parts["cluster"] = "crm_mon --one-shot --output-as=xml"
        else:
            parts["replication"] = "doveadm -f tab replicator status '*'"
        parts["backup"] = f"date +%s; cat {backup.METRICS} 2>/dev/null"
    if "storage" in groups:
        parts["mdstat"] = "cat /proc/mdstat 2>/dev/null"
        parts["zpool"] = "zpool list -H -o name,health 2>/dev/null"
    return "".join(f"echo '@@ {section}'; {command}\n" for section, command in parts.items())


def sections(output: str) -> dict[str, str]:
    found, current = {}, None
    for line in output.splitlines():
        if line.startswith("@@ "):
            current = line[3:]
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def read_hosts(config: Config) -> dict[str, dict[str, str] | None]:
    """Each host's sections, or None for a host that does not answer."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Path(folder) / "ssh_config"
        settings.write_text(ssh_config(config))

        def read(name: str) -> dict[str, str] | None:
            try:
                result = subprocess.run(["ssh", "-F", str(settings), name, "sh -s"], input=script(config, name),
                                        capture_output=True, text=True, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                return None
            return sections(result.stdout) if result.stdout.startswith("@@ ") else None

        with ThreadPoolExecutor(max_workers=16) as pool:
            return dict(zip(config.hosts, pool.map(read, config.hosts)))


def _seconds(ago: str) -> float:
    """doveadm's "01:02:03" ago, or "-" for never."""
    parts = ago.split(":")
    return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2]) if len(parts) == 3 else float("inf")


class HostsDirectly:
    """Answers the queries of ``mailstack.status`` from what the hosts said over SSH."""

    def __init__(self, config: Config, said: dict[str, dict[str, str] | None]):
        self.config = config
        self.series: dict[str, list[tuple[dict, float]]] = {}
        for name, sections_of_host in said.items():
            self._add('up{job="node"}', {"host": name}, 1 if sections_of_host is not None else 0)
            if sections_of_host is not None:
                self._read(name, sections_of_host)

    def query(self, expression: str) -> list[tuple[dict, float]]:
        return self.series.get(expression, [])

    def _add(self, expression: str, labels: dict, value: float) -> None:
        self.series.setdefault(expression, []).append((labels, value))

    def _read(self, name: str, said: dict[str, str]) -> None:
        groups = self.config.hosts[name].groups
        states = said.get("units", "").split()
        active = {unit: 1 if state == "active" else 0 for unit, state in zip(units_of(self.config, name), states)}
        for unit, value in active.items():
            self._add("unit_active", {"host": name, "unit": unit}, value)
        if "mx" in groups:
            for expression, unit in (("postfix_up", "postfix"), ("mailstack_rspamd_up", "rspamd"),
                                     ("redis_up", "redis-server")):
                self._add(expression, {"host": name}, active.get(unit, 0))
        if "vip" in said:
            self._add("mailstack_vrrp_master", {"host": name}, 1 if said["vip"].strip() not in ("", "0") else 0)
        if "haproxy" in said:
            self._read_haproxy(said["haproxy"])
        if "queue" in said:
            self._read_queue(name, said["queue"])
        if "replication" in said:
            self._read_replication(name, said["replication"])
        if "drbd" in said:
            self._read_drbd(name, said["drbd"])
        if "cluster" in said:
            self._read_cluster(name, said["cluster"])
        if "backup" in said:
            self._read_backup(name, said["backup"])
        self._read_storage(name, said.get("mdstat", ""), said.get("zpool", ""))

    def _read_haproxy(self, stats: str) -> None:
        for (proxy, server), row in haproxy.servers(stats).items():
            if proxy in ("stats", "mta_sts"):
                continue
            labels = {"proxy": proxy, "server": server}
            state = row["status"].split()[0] if row["status"] else "UNKNOWN"
            self._add("haproxy_server_status == 1", {**labels, "state": state}, 1)
            if row.get("lastsess") not in ("", "-1", None):
                self._add("haproxy_server_last_session_seconds >= 0", labels, float(row["lastsess"]))

    def _read_queue(self, name: str, queue: str) -> None:
        counts: dict[str, int] = {}
        for line in queue.splitlines():
            queue_name = json.loads(line)["queue_name"]
            counts[queue_name] = counts.get(queue_name, 0) + 1
        for queue_name, count in counts.items():
            self._add("postfix_showq_message_size_bytes_count", {"host": name, "queue": queue_name}, count)

    def _read_replication(self, name: str, state: str) -> None:
        for line in state.splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) >= 6:
                labels = {"host": name, "user": fields[0]}
                self._add("mailstack_replication_since_success_seconds", labels, _seconds(fields[4]))
                if fields[5] != "-":  # without Prometheus's history, a failed user counts as stuck
                    self._add("mailstack_replication_failed == 1", labels, 1)
                    self._add("min_over_time(mailstack_replication_failed[6m]) == 1", labels, 1)

    def _read_drbd(self, name: str, proc: str) -> None:
        """DRBD 8.4's /proc/drbd (Debian's kernel): ``0: cs:Connected ro:Primary/Secondary
        ds:UpToDate/UpToDate ...``, the local side first."""
        fields = dict(field.split(":", 1) for field in proc.split() if field.count(":") == 1)
        if {"cs", "ro", "ds"} <= fields.keys():
            self._add(PRIMARY, {"host": name}, fields["ro"].startswith("Primary/"))
            self._add(CONNECTED, {"host": name}, fields["cs"] == "Connected")
            self._add(UP_TO_DATE, {"host": name}, fields["ds"].startswith("UpToDate/"))

    def _read_cluster(self, name: str, xml: str) -> None:
        """Pacemaker's quorum and failed actions from ``crm_mon --output-as=xml``."""
        try:
            cluster = ElementTree.fromstring(xml)
        except ElementTree.ParseError:
            return
        leader = cluster.find("summary/current_dc")
        self._add(QUORATE, {"host": name}, leader is not None and leader.get("with_quorum") == "true")
        self._add(FAILED_ACTIONS, {"host": name}, len(cluster.findall("failures/failure")))

    def _read_backup(self, name: str, said: str) -> None:
        now, *metrics = said.splitlines()
        for line in metrics:
            metric, _, value = line.partition(" ")
            if metric == "mailstack_backup_last_success_timestamp_seconds" and float(value) > 0:
                self._add(backup.AGE, {"host": name}, int(now) - float(value))

    def _read_storage(self, name: str, mdstat: str, zpools: str) -> None:
        for device, members in re.findall(r"^(md\w+) : [^\n]*\n[^\n]*\[\d+/\d+\] \[([U_]+)\]", mdstat, re.M):
            self._add('node_md_disks_required - ignoring(state) node_md_disks{state="active"}',
                      {"host": name, "device": device}, members.count("_"))
        for line in zpools.splitlines():
            pool, _, health = line.partition("\t")
            self._add("node_zfs_zpool_state == 1", {"host": name, "zpool": pool, "state": health.lower()}, 1)
