"""``mailstack status``: the whole cluster on one screen, as the mon host's Prometheus sees it.

Each finding names what it is about, whether it is well, and where it is not, the command
that explains or fixes it. Prometheus already holds every fact (``docs/monitoring.md``), so
status asks it instead of logging in to every host; without a mon host, or when its
Prometheus does not answer, it reads the hosts directly (``status_hosts``).
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Protocol

from . import backup, status_hosts
from .config import Config
from .services import CLUSTERED, PROMETHEUS_PORT, listen
from .status_hosts import CONNECTED, FAILED_ACTIONS, PRIMARY, QUORATE, UP_TO_DATE

TIMEOUT = 10
REPLICATION_FAILED = "mailstack_replication_failed == 1"
REPLICATION_STUCK = "min_over_time(mailstack_replication_failed[6m]) == 1"
"""Failed at every scrape for longer than Dovecot's replicator waits (5 minutes) before it tries
a failed user again: one stalled dsync that the retry clears is not a problem yet."""


@dataclass(frozen=True)
class Finding:
    area: str
    subject: str
    ok: bool
    detail: str
    fix: str = ""


class Source(Protocol):
    def query(self, expression: str) -> list[tuple[dict, float]]:
        """Each series of an instant PromQL query, as (labels, value)."""


class Prometheus:
    def __init__(self, address: str):
        self.url = f"http://{listen(address, PROMETHEUS_PORT)}"

    def query(self, expression: str) -> list[tuple[dict, float]]:
        """Each series of an instant query, as (labels, value)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                results = json.load(response)["data"]["result"]
        except (OSError, ValueError, KeyError) as error:
            raise RuntimeError(f"Prometheus at {self.url} does not answer ({error})") from None
        return [(result["metric"], float(result["value"][1])) for result in results]


def prometheus(config: Config) -> Prometheus:
    """The Prometheus of the first mon host."""
    mon = config.hosts_in("mon")
    if not mon:
        raise RuntimeError(f"{config.source}: no host in group 'mon'")
    return Prometheus(str(config.hosts[mon[0]].address))


def _hosts(config: Config, source: Source) -> list[Finding]:
    up = {labels["host"]: value for labels, value in source.query('up{job="node"}')}
    return [
        Finding("hosts", name, up.get(name) == 1, "up" if up.get(name) == 1 else "not answering",
                "" if up.get(name) == 1 else f"ssh {name} (or mailstack lab status); is it running?")
        for name in config.hosts
    ]


def _services(source: Source) -> list[Finding]:
    expiry = {labels["service"]: value for labels, value in source.query(
        '(probe_ssl_earliest_cert_expiry{job="services"} - time()) / 86400')}
    findings = []
    for labels, value in source.query('probe_success{job="services"}'):
        days = f", certificate {expiry[labels['service']]:.0f} days left" if labels["service"] in expiry else ""
        findings.append(Finding(
            "services", f"{labels['service']} {labels['instance']}", value == 1,
            ("answers" if value == 1 else "fails its protocol probe") + days,
            "" if value == 1 else "check HAProxy on the lb hosts and the backends below",
        ))
    for service, days in expiry.items():
        if days < 14:
            findings.append(Finding("certificates", service, False, f"expires in {days:.0f} days",
                                    "journalctl -u certbot on the mx hosts, then deploy"))
    return findings


def _virtual_ip(config: Config, source: Source) -> list[Finding]:
    holders = sorted(labels["host"] for labels, value in source.query("mailstack_vrrp_master") if value == 1)
    if len(holders) == 1:
        return [Finding("virtual IP", str(config.cluster.virtual_ip), True, f"held by {holders[0]}")]
    if not holders:
        return [Finding("virtual IP", str(config.cluster.virtual_ip), False, "held by no lb host",
                        "systemctl start keepalived haproxy on an lb host; journalctl -t keepalived-notify")]
    return [Finding("virtual IP", str(config.cluster.virtual_ip), False, f"held by {', '.join(holders)} (split brain)",
                    "VRRP between the lb hosts is blocked: check the link and protocol 112 in the firewall")]


def _standbys(source: Source) -> set[str]:
    """The mx hosts of a Debian 13 pair that do not hold the mailboxes (DRBD Secondary): by
    design they run neither Postfix nor Dovecot, and their queue is not mounted."""
    return {labels["host"] for labels, value in source.query(PRIMARY) if value == 0}


def _backends(source: Source, standbys: set[str]) -> list[Finding]:
    """Each backend's state as the lb hosts see it; the active one of each service is the one
    that took the latest connection (active/standby: one takes them all)."""
    states: dict[tuple[str, str], set[str]] = {}
    for labels, value in source.query('haproxy_server_status == 1'):
        states.setdefault((labels["proxy"], labels["server"]), set()).add(labels["state"])
    latest: dict[str, tuple[float, str]] = {}
    for labels, seconds in source.query("haproxy_server_last_session_seconds >= 0"):
        here = (seconds, labels["server"])
        latest[labels["proxy"]] = min(latest.get(labels["proxy"], here), here)
    findings = []
    for (proxy, server), state in sorted(states.items()):
        standby = server in standbys and state == {"DOWN"}
        healthy = state <= {"UP", "MAINT", "DRAIN"} or standby
        seconds, active = latest.get(proxy, (0, None))
        findings.append(Finding(
            "backends", f"{proxy}/{server}", healthy,
            ", ".join(sorted(state)) + (" (the standby: it runs no mail)" if standby else "")
            + (f", active (last connection {seconds:.0f} s ago)" if active == server else ""),
            "" if healthy else f"HAProxy's health check fails: look at {server}",
        ))
    return findings


def _mail(source: Source, standbys: set[str]) -> list[Finding]:
    """Per mx host: its queues, and whether Postfix's queue (not on a standby, where it is not
    mounted), Rspamd and Redis answer."""
    queued: dict[str, float] = {}
    deferred: dict[str, float] = {}
    for labels, count in source.query("postfix_showq_message_size_bytes_count"):
        queued[labels["host"]] = queued.get(labels["host"], 0) + count
        if labels["queue"] == "deferred":
            deferred[labels["host"]] = count
    answering = {
        part: {labels["host"]: value == 1 for labels, value in source.query(metric)}
        for part, metric in (("Postfix's queue", "postfix_up"), ("Rspamd", "mailstack_rspamd_up"),
                             ("Redis", "redis_up"))
    }
    findings = []
    for host in sorted(set().union(*answering.values())):
        expected = {"Postfix's queue"} if host in standbys else set()
        silent = [part for part, hosts in answering.items() if not hosts.get(host) and part not in expected]
        queues = f"{queued.get(host, 0):.0f} message(s) queued, {deferred.get(host, 0):.0f} deferred"
        detail = ("the standby: its queue is with the mailboxes" if expected else queues) + "".join(
            f"; {part} does not answer" for part in silent)
        findings.append(Finding(
            "mail", host, not silent, detail,
            f"systemctl status 'postfix*' rspamd redis-server on {host}" if silent else "",
        ))
    return findings


def _mailboxes(source: Source) -> list[Finding]:
    """A Debian 13 pair: which mx host holds the mailboxes (DRBD Primary), whether DRBD mirrors
    them to the other, and each host's quorum and failed actions in Pacemaker."""
    def by_host(expression: str) -> dict[str, float]:
        return {labels["host"]: value for labels, value in source.query(expression)}

    roles = by_host(PRIMARY)
    connected, current, quorate, failed = (by_host(expression)
                                           for expression in (CONNECTED, UP_TO_DATE, QUORATE, FAILED_ACTIONS))
    holders = sorted(host for host, role in roles.items() if role == 1)
    findings = []
    if roles and len(holders) != 1:
        findings.append(Finding("mailboxes", "the mx pair", False,
                                f"held by {', '.join(holders)} (split brain)" if holders else "held by no mx host",
                                "crm_mon -1 on an mx host (docs/ha.md)"))
    for host, role in sorted(roles.items()):
        problems = [said for said, wrong in (
            ("not mirrored to the peer", connected.get(host) != 1),
            ("its copy is not up to date", current.get(host) != 1),
            ("no quorum", quorate.get(host) == 0),
            (f"{failed.get(host, 0):.0f} failed action(s)", failed.get(host, 0) > 0),
        ) if wrong]
        held = "holds the mailboxes (DRBD Primary)" if role == 1 else "the standby (DRBD Secondary)"
        detail = "; ".join([held, *problems]) if problems else f"{held}, mirrored"
        findings.append(Finding("mailboxes", host, not problems, detail,
                                "drbdadm status; crm_mon -1 --show-detail" if problems else ""))
    return findings


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.0f} h ago"


def _replication(source: Source) -> list[Finding]:
    """Per mx host: whether every user's mailbox replicates to the peer, and since when."""
    hosts: dict[str, dict[str, float]] = {}
    for labels, seconds in source.query("mailstack_replication_since_success_seconds"):
        hosts.setdefault(labels["host"], {})[labels["user"]] = seconds
    failed, stuck = _users_by_host(source, REPLICATION_FAILED), _users_by_host(source, REPLICATION_STUCK)
    findings = []
    for host, users in sorted(hosts.items()):
        failing = stuck.get(host, [])
        retried = [user for user in failed.get(host, []) if user not in failing]
        detail = f"{len(users)} user(s), the least recent synced {_duration(max(users.values()))}"
        detail += f"; failing: {', '.join(failing)}" if failing else ""
        detail += f"; retried within 5 min: {', '.join(retried)}" if retried else ""
        findings.append(Finding(
            "replication", host, not failing, detail,
            f"doveadm replicator status '*' on {host}; journalctl -u dovecot | grep dsync" if failing else "",
        ))
    return findings


def _users_by_host(source: Source, expression: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for labels, _ in source.query(expression):
        found.setdefault(labels["host"], []).append(labels["user"])
    return {host: sorted(users) for host, users in found.items()}


def _backups(config: Config, source: Source) -> list[Finding]:
    """The last good backup of the mx pair into its repository, from either mx host."""
    if not config.hosts_in("backup"):
        return []
    ages = {labels["host"]: age for labels, age in source.query(backup.AGE)}
    where = f"{backup.backup_host(config)}:{backup.repository_path(config)}"
    fix = f"mailstack backup run; journalctl -u mailstack-backup on {backup.standby(config)} (docs/backups.md)"
    if not ages:
        return [Finding("backups", where, False, "no backup has succeeded yet", fix)]
    host = min(ages, key=ages.get)
    recent = ages[host] <= 2 * config.backup.every_hours * 3600
    return [Finding("backups", where, recent, f"last good backup {_duration(ages[host])} (from {host})",
                    "" if recent else fix)]


def _storage(source: Source) -> list[Finding]:
    findings = []
    for labels, missing in source.query('node_md_disks_required - ignoring(state) node_md_disks{state="active"}'):
        findings.append(Finding("storage", f"{labels['host']} {labels['device']}", missing == 0,
                                "whole" if missing == 0 else f"lacks {missing:.0f} disk(s)",
                                "" if missing == 0 else f"mdadm --detail /dev/{labels['device']}; docs/storage.md"))
    for labels, _ in source.query('node_zfs_zpool_state == 1'):
        online = labels["state"] == "online"
        findings.append(Finding("storage", f"{labels['host']} {labels['zpool']}", online, labels["state"],
                                "" if online else "zpool status -x; docs/storage.md"))
    return findings


def _alerts(source: Source) -> list[Finding]:
    return [
        Finding("alerts", labels["alertname"], labels.get("severity") == "info",
                ", ".join(f"{key}={value}" for key, value in sorted(labels.items())
                          if key not in ("alertname", "alertstate", "__name__")),
                "docs/monitoring.md says what it means and what to do")
        for labels, _ in source.query('ALERTS{alertstate="firing"}')
    ]


def _units(source: Source, standbys: set[str]) -> list[Finding]:
    """Read from the hosts directly: each unit a host's groups run (Prometheus has no such
    series); on a standby, Pacemaker runs Postfix and Dovecot where the mailboxes are."""
    findings = []
    for labels, value in source.query("unit_active"):
        idle = labels["host"] in standbys and labels["unit"] in CLUSTERED
        findings.append(Finding(
            "units", f"{labels['host']} {labels['unit']}", value == 1 or idle,
            "active" if value == 1 else "not active" + (" (the standby)" if idle else ""),
            "" if value == 1 or idle else f"systemctl status {labels['unit']}; journalctl -u {labels['unit']}"))
    return findings


def findings(config: Config, directly: bool = False) -> list[Finding]:
    """Everything status reports, from the mon host's Prometheus or, without one (or with
    ``directly``, or when it does not answer), from the hosts over SSH."""
    monitoring: list[Finding] = []
    source = None
    if config.hosts_in("mon") and not directly:
        try:
            source = prometheus(config)
            source.query("up")
        except RuntimeError as error:
            source = None
            monitoring = [Finding("monitoring", "Prometheus", False, f"{error}; the hosts were read directly",
                                  f"systemctl status prometheus on {config.hosts_in('mon')[0]}")]
    if source is None:
        source = status_hosts.HostsDirectly(config, status_hosts.read_hosts(config))
    standbys = _standbys(source)
    return (monitoring + _hosts(config, source) + _units(source, standbys) + _services(source)
            + _virtual_ip(config, source) + _backends(source, standbys) + _mail(source, standbys) + _mailboxes(source)
            + _replication(source) + _backups(config, source) + _storage(source) + _alerts(source))


def report(found: list[Finding], as_json: bool = False) -> str:
    if as_json:
        return json.dumps({"ok": all(f.ok for f in found), "findings": [asdict(f) for f in found]}, indent=2)
    lines, area = [], None
    for finding in found:
        if finding.area != area:
            area = finding.area
            lines.append(f"{area}:")
        mark = "ok  " if finding.ok else "FAIL"
        lines.append(f"  {mark} {finding.subject}: {finding.detail}" + (f"  -> {finding.fix}" if finding.fix else ""))
    problems = sum(not f.ok for f in found)
    lines.append(f"{problems} problem(s)" if problems else "all well")
    return "\n".join(lines)
