"""The ``mailstack`` command: one function per subcommand, its docstring is its help."""

import argparse
import getpass
import imaplib
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

from dns import exception as dns_exception
from jinja2 import TemplateNotFound

from . import PROJECT, TEMPLATES, certificates, mailboxes, records, secrets, ssh, status, users
from . import backup as backups
from . import dns as dns_records
from . import migration as migrations
from .config import GROUPS, ConfigError
from .config.types import format_size
from .inventory import load_for
from .lab import Lab, mailcheck
from .lab.system import LabError
from .render import check_host, checked_by, render_host
from .staging import Staging
from .staging import box as staging_box


def validate(args) -> int:
    """Check an inventory's configuration without contacting any host, and summarise it."""
    config = load_for(args.inventory)
    print(f"{config.source}: valid (cluster {config.cluster.name}, {config.cluster.mail_hostname})")
    for group in GROUPS:
        if names := config.hosts_in(group):
            print(f"  {group:8} {', '.join(names)}")
    print(f"  domains  {', '.join(d.name for d in config.domains)}")
    print(f"  users    {len(config.users)}, aliases {len(config.aliases)}, tls {config.tls.mode}")
    return 0


def _chosen_hosts(config, chosen: list[str] | None) -> list[str]:
    """The hosts named with --host (every host without one), each checked against the inventory."""
    unknown = [name for name in chosen or [] if name not in config.hosts]
    if unknown:
        raise ConfigError(config.source, [f"--host: no host {unknown[0]} in {config.source}"])
    return chosen or list(config.hosts)


def render(args) -> int:
    """Write every file a host would receive into a folder, without contacting it."""
    config = load_for(args.inventory)
    hosts = _chosen_hosts(config, args.host and [args.host])
    failed = False
    for name in hosts:
        out = Path(args.out) / name if len(hosts) > 1 else Path(args.out)
        try:
            written = render_host(config, name, out)
        except TemplateNotFound as error:  # an OSError as well: a broken installation, not --out
            print(f"mailstack render: no template {error.name} in {TEMPLATES}; reinstall mailstack", file=sys.stderr)
            return 1
        except OSError as error:
            raise ConfigError(out, [f"--out {args.out}: cannot write {error.filename}: {error.strerror}"]) from None
        print(f"{name}: {len(written)} files in {out}")
        if args.check:
            failed |= _report_checks(config, name, out)
    return 1 if failed else 0


def _report_checks(config, host_name: str, out: Path) -> bool:
    """Print each failed check of a host's rendered files, or that all passed; True if one failed."""
    failures = check_host(config, host_name, out)
    for component, said in failures.items():
        said = "\n  ".join(said.splitlines()[-10:])
        print(f"{host_name}: {component}: its check failed:\n  {said}", file=sys.stderr)
    if not failures:
        print(f"{host_name}: every file passed its check, by the tools of {checked_by(config, host_name)}")
    return bool(failures)


def make_secrets(args) -> int:
    """Make the keys and passwords the cluster needs that do not exist yet (DKIM keys, VRRP and
    doveadm passwords, the internal CA and its certificates, the lab's keys); existing ones are kept."""
    config = load_for(args.inventory)
    folder = secrets.make(config)
    print(f"{config.source}: secrets in {folder} (never printed; files are 0600)")
    return 0


def dns(args) -> int:
    """The DNS records the cluster needs: print them, publish them (RFC 2136), or check them."""
    config = load_for(args.inventory)
    secrets.make(config)  # the DKIM keys the records publish
    if args.action == "records":
        return _print_records(config, args.format)
    if config.dns is None and (args.action == "push" or not args.resolver):
        raise ConfigError(config.source, [f"{config.source}: dns: no dns section; which server holds the zone?"])
    try:
        if args.action == "push":
            lines = dns_records.push(config, dry_run=args.dry_run)
            print("\n".join(lines) if lines else "nothing to change")
            return 0
        differences = dns_records.compare(config, args.resolver)
        problems = dns_records.semantic_problems(config, differences, certificates.extra_roots(config))
        validations = dns_records.validations(config, args.resolver or dns_records.default_resolver(config))
    except (OSError, RuntimeError, dns_exception.DNSException) as error:
        print(f"mailstack dns: {error}", file=sys.stderr)
        return 1
    for difference in differences:
        wanted, found = " | ".join(difference.wanted), " | ".join(difference.found) or "-"
        print(f"{difference.status:8} {difference.name} {difference.type}  expected: {wanted}  found: {found}")
    for problem in problems:
        print(f"PROBLEM  {problem}")
    for validation in validations:  # a zone may be unsigned by choice: a warning, not a failure
        print(f"{'DNSSEC' if validation.status == 'signed-and-valid' else 'WARNING'}   {validation.finding}")
    return 1 if problems or any(d.status != "OK" for d in differences) else 0


def show_status(args) -> int:
    """The whole cluster on one screen: hosts, services, virtual IP, backends, queues,
    replication, storage and firing alerts, each problem with what to do; exit 1 when
    anything is wrong. From the mon host's Prometheus, else from the hosts over SSH."""
    config = load_for(args.inventory)
    try:
        found = status.findings(config, directly=args.direct)
    except RuntimeError as error:
        print(f"mailstack status: {error}", file=sys.stderr)
        return 2
    print(status.report(found, args.json))
    return 0 if all(finding.ok for finding in found) else 1


def backup(args) -> int:
    """Backups of the mx hosts (BorgBackup on the backup host): list the archives, take one now,
    check the repository, restore a user or folder as it was at a time, or export the key."""
    config = load_for(args.inventory)
    if not config.hosts_in("backup"):
        raise ConfigError(config.source, [f"{config.source}: hosts: no host in group 'backup' holds the backups"])
    if args.host and args.host not in config.hosts_in("mx"):
        raise ConfigError(config.source, [f"--host {args.host}: no mx host of that name in {config.source}"])
    if args.action == "export-key" and not args.out:
        raise ConfigError(config.source, ["mailstack backup export-key: give --out FILE"])
    try:
        return BACKUP_ACTIONS[args.action](config, args)
    except (backups.BackupError, mailboxes.MailboxError, subprocess.TimeoutExpired) as error:
        print(f"mailstack backup: {error}", file=sys.stderr)
        return 1


def _backup_list(config, args) -> int:
    found = backups.archives(config, backups.answering_mx(config))
    if args.json:
        print(json.dumps([{"name": a.name, "time": a.time.isoformat(), "host": a.host} for a in found], indent=2))
        return 0
    for archive in found:
        print(f"{archive.time:%Y-%m-%d %H:%M:%S}  {archive.host:10} {archive.name}")
    print(f"{len(found)} archives" + (f", newest {found[-1].time:%Y-%m-%d %H:%M:%S}" if found else ""))
    return 0


def _backup_run(config, args) -> int:
    host = args.host or backups.answering_mx(config)
    print(f"{host}: backing up", flush=True)
    _, state = backups.take(config, host)
    print(f"{config.source.name} and {config.secrets_dir} saved as {state}")
    return 0


def _backup_check(config, args) -> int:
    host = args.host or backups.answering_mx(config)
    return subprocess.run(["ssh", "-F", str(ssh.config_file(config)), host, f"{backups.SCRIPT} check"]).returncode


def _backup_restore(config, args) -> int:
    if args.cluster:
        return _backup_restore_cluster(config, args)
    if not args.user:
        raise ConfigError(config.source, ["mailstack backup restore: give --user (or --cluster)"])
    done = backups.restore(config, args.user, args.folder, args.at, args.beside, args.host)
    what = f"{done.user}'s folder {done.folder}" if done.folder else f"{done.user}'s mailbox"
    where = f" into the folder {done.into}" if done.into else ""
    if args.json:
        print(json.dumps({"user": done.user, "folder": done.folder, "archive": done.archive.name,
                          "into": done.into, "messages": done.messages}))
    else:
        print(f"restored {what} from {done.archive.name}{where}: {done.messages} messages, each matching the"
              " backup (SHA-256 of its bytes, flags)")
    return 0


def _backup_restore_cluster(config, args) -> int:
    if args.user or args.folder or args.beside:
        raise ConfigError(config.source, ["mailstack backup restore --cluster: restores every mailbox; leave out"
                                          " --user, --folder and --beside"])
    print("restoring every mailbox", flush=True)
    done = backups.restore_cluster(config, args.at)
    if args.json:
        print(json.dumps({"archive": done.archive.name, "hosts": done.hosts, "users": done.users,
                          "messages": done.messages, "bytes": done.bytes, "seconds": round(done.seconds, 1)}))
    else:
        alike = ("DRBD copies it to the other mx host" if config.mailbox_replication == "drbd"
                 else "each host holds the same mail")
        print(f"restored {done.users} users' mailboxes ({done.messages} messages, {done.bytes / 1e6:.1f} MB) from"
              f" {done.archive.name} onto {', '.join(done.hosts)} in {done.seconds:.0f} s; {alike}")
    return 0


def _backup_export_key(config, args) -> int:
    host = args.host or backups.answering_mx(config)
    backups.export_key(config, host, Path(args.out))
    print(f"{args.out}: the repository's key and passphrase (0600); keep it offline, away from the cluster")
    return 0


BACKUP_ACTIONS = {"list": _backup_list, "run": _backup_run, "check": _backup_check, "restore": _backup_restore,
                  "export-key": _backup_export_key}


def migrate(args) -> int:
    """Move mail from the old IMAP server onto the cluster: plan, sync, verify, passwords, cutover,
    rollback, status (docs/migration.md)."""
    config = load_for(args.inventory)
    if config.migration is None:
        raise ConfigError(config.source, [f"{config.source}: migration: missing (the old server's source and"
                                          " credentials)"])
    chosen = migrations.check_users(config, args.user or [])
    if args.wave is not None and args.action in ("plan", "sync", "verify"):
        if args.user:
            raise ConfigError(config.source, [f"mailstack migrate {args.action}: give --user or --wave, not both"])
        chosen = migrations.wave_users(config, args.wave)
    try:
        if args.action == "status":
            return _migrate_status(config, chosen, args)
        return MIGRATE_ACTIONS[args.action](config, chosen, migrations.credentials(config), args)
    except (migrations.MigrationError, subprocess.TimeoutExpired) as error:
        print(f"mailstack migrate: {error}", file=sys.stderr)
        return 1


ASSUMED_RATE = 2e6
"""Bytes per second a plan assumes before any sync measured the real rate."""


def _measured_rate(config) -> float | None:
    synced = [entry for entry in migrations.history(config) if entry["step"] == "sync" and not entry.get("error")]
    seconds = sum(entry["seconds"] for entry in synced)
    return sum(entry["bytes"] for entry in synced) / seconds if seconds else None


def _migrate_plan(config, chosen, login, args) -> int:
    plans = migrations.plan(config, chosen, login)
    rate = _measured_rate(config)
    migrations.record(config, "plan", [{"user": p.user, "folders": p.folders, "messages": p.messages,
                                        "bytes": p.bytes, "fits": p.fits} for p in plans])
    if args.json:
        print(json.dumps([{"user": p.user, "folders": p.folders, "messages": p.messages, "bytes": p.bytes,
                           "quota": p.quota, "fits": p.fits, "seconds": round(p.bytes / (rate or ASSUMED_RATE))}
                          for p in plans], indent=2))
        return 0
    print(f"{'user':32} {'folders':>7} {'messages':>9} {'MB':>9} {'quota MB':>9}  fits  time")
    for p in plans:
        print(f"{p.user:32} {p.folders:7} {p.messages:9} {p.bytes / 1e6:9.1f} {p.quota / 1e6:9.1f}  "
              f"{'yes ' if p.fits else 'NO  '}  {p.bytes / (rate or ASSUMED_RATE):.0f} s")
    total = sum(p.bytes for p in plans)
    print(f"{len(plans)} users, {sum(p.messages for p in plans)} messages, {total / 1e6:.1f} MB; about"
          f" {total / (rate or ASSUMED_RATE) / config.migration.parallel:.0f} s with {config.migration.parallel} at"
          f" once at {(rate or ASSUMED_RATE) / 1e6:.1f} MB/s each ({'measured' if rate else 'assumed'})")
    if misfits := [p.user for p in plans if not p.fits]:
        print(f"over their quota on the cluster (sync leaves them out): {', '.join(misfits)}")
    return 0


def _migrate_sync(config, chosen, login, args) -> int:
    progress = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only the summary
    plans = migrations.plan(config, chosen, login)
    print(f"copying {len(plans)} users ({sum(p.messages for p in plans)} messages,"
          f" {sum(p.bytes for p in plans) / 1e6:.1f} MB) from {config.migration.source}", file=progress, flush=True)
    started = time.monotonic()
    done = migrations.sync(config, plans, login, report=lambda line: print(line, file=progress, flush=True))
    planned = {p.user: p for p in plans}
    migrations.record(config, "sync", [
        {"user": one.user, "added": one.added, "removed": one.removed, "seconds": round(one.seconds, 1),
         "messages": planned[one.user].messages, "bytes": planned[one.user].bytes, "error": one.error}
        for one in done], metrics_text=migrations.metrics(done, plans))
    failed = [one for one in done if one.error]
    copied = sum(p.bytes for p in plans if p.fits)
    seconds = time.monotonic() - started
    summary = {"users": len(done) - len(failed), "failed": [one.user for one in failed],
               "added": sum(one.added for one in done), "removed": sum(one.removed for one in done),
               "bytes": copied, "seconds": round(seconds, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"synced {summary['users']} users in {seconds:.0f} s ({copied / 1e6 / seconds:.2f} MB/s): "
              f"{summary['added']} messages added, {summary['removed']} removed"
              + (f"; FAILED: {', '.join(summary['failed'])}" if failed else ""))
    return 1 if failed else 0


def _migrate_verify(config, chosen, login, args) -> int:
    moved = migrations.moved_with(config)
    with ThreadPoolExecutor(config.migration.parallel) as pool:
        results = list(pool.map(lambda user: migrations.verify_user(config, user, login, user in moved), chosen))
    migrations.record(config, "verify", [{"user": r.user, "messages": r.messages, "bytes": r.bytes,
                                          "differences": len(r.differences)} for r in results])
    if args.json:
        print(json.dumps([{"user": r.user, "messages": r.messages, "bytes": r.bytes,
                           "differences": [vars(d) for d in r.differences]} for r in results], indent=2))
    else:
        for result in results:
            state = "same" if not result.differences else f"{len(result.differences)} DIFFERENCES"
            print(f"{result.user}: {result.messages} messages, {result.bytes / 1e6:.1f} MB: {state}")
            for difference in result.differences:
                print(f"  {difference}")
    return 1 if any(r.differences for r in results) else 0


def _migrate_status(config, chosen, args) -> int:
    found = migrations.status(config)
    rows = {user: found.get(user, {}) for user in chosen if user in found or args.user}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for user, steps in rows.items():
        parts = []
        if plan := steps.get("plan"):
            parts.append(f"planned {plan['time']} ({plan['messages']} messages)")
        if sync := steps.get("sync"):
            parts.append(f"sync FAILED {sync['time']}" if sync["error"] else
                         f"synced {sync['time']} (+{sync['added']} -{sync['removed']})")
        if verified := steps.get("verify"):
            parts.append(f"verified {verified['time']}" + (f" with {verified['differences']} DIFFERENCES"
                                                           if verified["differences"] else ""))
        for step, done in (("cutover", "cut over"), ("rollback", "rolled back")):
            if entry := steps.get(step):
                parts.append(f"{done} {entry['time']} (wave {entry['wave']})")
        print(f"{user}: {', '.join(parts) or 'not started'}")
    return 0


def _migrate_cutover(config, chosen, login, args) -> int:
    return _migrate_wave(config, login, args, migrations.cutover, "cut over", "still on the old server")


def _migrate_rollback(config, chosen, login, args) -> int:
    return _migrate_wave(config, login, args, migrations.rollback, "back on the old server", "still on the cluster")


def _migrate_wave(config, login, args, run, moved: str, stayed: str) -> int:
    """Cut over or roll back ``args.wave`` with ``run``; record and report which users moved."""
    if args.wave is None:
        raise ConfigError(config.source, [f"mailstack migrate {args.action}: give --wave N"])
    started = time.monotonic()
    done = run(config, args.wave, login, report=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.monotonic() - started
    ok, failed = [one.user for one in done if one.ok], [one for one in done if not one.ok]
    migrations.record(config, args.action, [{"user": user, "wave": args.wave} for user in ok])
    migrations.record(config, f"{args.action}-failed", [{"user": one.user, "wave": args.wave, "error": one.why}
                                                        for one in failed])
    if args.json:
        print(json.dumps({"wave": args.wave, "moved": ok, "failed": [one.user for one in failed],
                          "seconds": round(seconds, 1)}))
    else:
        print(f"wave {args.wave}: {len(ok)} users {moved} in {seconds:.0f} s"
              + (f"; {stayed}: {', '.join(one.user for one in failed)}" if failed else ""))
    return 1 if failed else 0


def _migrate_passwords(config, chosen, login, args) -> int:
    outcomes = migrations.import_passwords(config, chosen, login)
    imported = [user for user, outcome in outcomes.items() if outcome == migrations.IMPORTED]
    migrations.record(config, "passwords", [{"user": user, "outcome": outcome} for user, outcome in outcomes.items()])
    if args.json:
        print(json.dumps(outcomes, indent=2))
    else:
        for user, outcome in outcomes.items():
            print(f"{user:32} {outcome}")
        print(f"{config.source}: {len(imported)} password hashes written"
              + ("; deploy to apply them" if imported else ""))
    return 0


MIGRATE_ACTIONS = {"plan": _migrate_plan, "sync": _migrate_sync, "verify": _migrate_verify,
                   "cutover": _migrate_cutover, "rollback": _migrate_rollback, "passwords": _migrate_passwords}


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is no time: write it as 2026-12-02T19:30") from None


def _print_records(config, output_format: str) -> int:
    served = certificates.served_certificates(config)
    found = records.records(config, served)
    ptr = records.reverse_dns(config)
    if output_format == "json":
        print(json.dumps({
            "records": [{"name": r.name, "type": r.type, "value": r.value, "why": r.why} for r in found],
            "reverse_dns_to_request": [{"address": address, "name": name} for address, name in ptr],
        }, indent=2))
        return 0
    for record in found:
        print(f"; {record.why}\n{record.zone_line()}")
    if unasked := [name for name in config.hosts_in("mx") if name not in served]:
        print(f"; TLSA for port 25 is missing: {', '.join(unasked)} could not be asked for the certificate (SSH)")
    print("; Reverse DNS (PTR) is published by whoever owns the addresses; ask them for:")
    for address, name in ptr:
        print(f";   {address} -> {name}")
    return 0


def lab(args) -> int:
    """Run the local lab: real Debian hosts (containers and a QEMU guest) on this machine."""
    the_lab = Lab(load_for(args.inventory))
    if args.action == "up":
        the_lab.up()
        _print_status(the_lab)
    elif args.action == "login":
        _print_login(the_lab)
    elif args.action == "status":
        _print_status(the_lab)
    elif args.action == "down":
        the_lab.down()
    elif args.action == "destroy":
        the_lab.destroy()
    elif args.action == "ssh":
        os.execvp("ssh", ["ssh", "-F", str(the_lab.ssh_config_file), *args.host])
    return 0


def staging(args) -> int:
    """Staging on Vagrant VMs (libvirt): build the local box, bring the VMs up or down, or rebuild
    and verify the whole staging (docs/staging.md)."""
    the_staging = Staging(load_for(args.inventory))
    if args.action == "box":
        print(staging_box.build(the_staging.config.cluster.release))
        return 0
    if args.action == "rebuild":
        return the_staging.rebuild(str(Path(args.inventory).resolve()))
    getattr(the_staging, args.action)()
    return 0


def _print_status(the_lab: Lab) -> None:
    rows = the_lab.status()
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    for row in [dict(zip(columns, columns)), *rows]:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def verify(args) -> int:
    """Run the testinfra suites (tests/infra) against an inventory's hosts (or those named
    with --host); print a summary per host."""
    config = load_for(args.inventory)
    hosts = _chosen_hosts(config, args.host)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/infra", "--inventory", str(Path(args.inventory).resolve()),
             "--limit", ",".join(hosts), "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
            cwd=PROJECT,
        )
        cases = ElementTree.parse(report).iter("testcase") if report.exists() else []
        summary = {name: {"passed": 0, "failed": 0, "skipped": 0} for name in hosts}
        for case in cases:
            parts = case.get("name", "").partition("[")[2].rstrip("]").split("-")
            host = next((part for part in parts if part in summary), None)
            if host:
                outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
                    "skipped" if case.find("skipped") is not None else "passed"
                )
                summary[host][outcome] += 1
    print()
    for name, counts in summary.items():
        verdict = "FAIL" if counts["failed"] else "ok"
        print(f"{name:10} {','.join(config.hosts[name].groups):12} {verdict:5} "
              f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return result.returncode


def user(args) -> int:
    """Add, list, remove users or change a password; only that user's lines of the YAML change."""
    config = load_for(args.inventory)
    if args.action == "list":
        for entry in config.users:
            quota = format_size(entry.quota or config.mail.default_quota)
            print(f"{entry.address}  quota {quota}{'' if entry.quota else ' (default)'}")
        return 0
    if not args.address:
        raise ConfigError(config.source, [f"mailstack user {args.action}: give the ADDRESS"])
    if args.action == "del":
        users.remove(config.source, args.address)
    else:
        password_hash = users.hash_password(_read_password(args.password_stdin))
        if args.action == "add":
            users.add(config.source, args.address, password_hash, args.quota)
        else:
            users.set_password(config.source, args.address, password_hash)
    print(f"{config.source}: {args.action} {args.address}; deploy to apply it")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise ConfigError(Path("-"), ["the two passwords differ; nothing changed"])
    return password


def _print_login(the_lab: Lab) -> None:
    """Prove a round trip through the virtual IP on every mx host, then tell how to log in."""
    config = the_lab.config
    for name in config.hosts_in("mx"):
        try:
            seconds = mailcheck.round_trip(the_lab, name)
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error) as error:
            raise LabError(f"the mail round trip through {name} failed: {error}") from None
        print(f"{config.cluster.mail_hostname} ({config.cluster.virtual_ip}) served by {name}: IMAP 993 (TLS),"
              f" 143 (STARTTLS); SMTP submission 587, 465 -- round trip alice -> bob took {seconds:.1f} s")
    logins = ", ".join(f"{user} / {password}" for user, password in config.lab.passwords.items())
    print(f"log in as {logins}; pebble's root signs the certificates")


def _inventory_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", "-i", required=True, help="inventory file, such as inventories/prod.py")


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="mailstack", description="Build, verify and operate a highly available mail cluster."
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser("validate", help=validate.__doc__, description=validate.__doc__)
    _inventory_option(sub)
    sub.set_defaults(run=validate)

    sub = commands.add_parser("render", help=render.__doc__, description=render.__doc__)
    _inventory_option(sub)
    sub.add_argument("--host", help="one host (default: every host, each in its own folder)")
    sub.add_argument("--out", required=True, help="folder to write into")
    sub.add_argument(
        "--check", action="store_true",
        help="check the files with each component's own tool, as the host's Debian release has it (as root:"
        " in a network namespace; another release than this machine's in the lab's image of it)",
    )
    sub.set_defaults(run=render)

    sub = commands.add_parser("secrets", help=make_secrets.__doc__, description=make_secrets.__doc__)
    _inventory_option(sub)
    sub.set_defaults(run=make_secrets)

    sub = commands.add_parser("verify", help=verify.__doc__, description=verify.__doc__)
    _inventory_option(sub)
    sub.add_argument("--host", action="append", help="check only this host (repeatable; default: every host)")
    sub.set_defaults(run=verify)

    sub = commands.add_parser("user", help=user.__doc__, description=user.__doc__)
    sub.add_argument("action", choices=["add", "list", "del", "passwd"])
    sub.add_argument("address", nargs="?", help="the user's e-mail address")
    sub.add_argument("--quota", help="with add: the mailbox quota, such as 5G (default: mail.default_quota)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    _inventory_option(sub)
    sub.set_defaults(run=user)

    sub = commands.add_parser("dns", help=dns.__doc__, description=dns.__doc__)
    sub.add_argument("action", choices=["records", "push", "check"])
    sub.add_argument("--format", choices=["zone", "json"], default="zone", help="records: output format")
    sub.add_argument("--dry-run", action="store_true", help="push: print the changes only")
    sub.add_argument("--resolver", help="check: ask this server instead of the configured authority")
    _inventory_option(sub)
    sub.set_defaults(run=dns)

    sub = commands.add_parser("status", help=show_status.__doc__, description=show_status.__doc__)
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("--direct", action="store_true", help="read the hosts over SSH even when a mon host exists")
    _inventory_option(sub)
    sub.set_defaults(run=show_status)

    sub = commands.add_parser("backup", help=backup.__doc__, description=backup.__doc__)
    sub.add_argument("action", choices=list(BACKUP_ACTIONS))
    sub.add_argument("--user", help="restore: the user whose mail comes back")
    sub.add_argument("--folder", help="restore: only this folder (and those below it)")
    sub.add_argument("--at", type=_time, help="restore: as it was at this time, hosts' time (default: newest backup)")
    sub.add_argument("--beside", action="store_true", help="restore: into a new folder, leaving the mailbox as it is")
    sub.add_argument("--cluster", action="store_true", help="restore: every mailbox, onto mx hosts that lost theirs")
    sub.add_argument("--host", help="the mx host to work on (default: the standby, or for restore the first)")
    sub.add_argument("--out", help="export-key: the file to write (0600)")
    sub.add_argument("--json", action="store_true", help="list, restore: machine-readable output")
    _inventory_option(sub)
    sub.set_defaults(run=backup)

    sub = commands.add_parser("migrate", help=migrate.__doc__, description=migrate.__doc__)
    sub.add_argument("action", choices=[*MIGRATE_ACTIONS, "status"])
    sub.add_argument("--user", action="append", help="only this user (repeatable; default: every user)")
    sub.add_argument("--wave", type=int, help="the wave (from 1, as in migration.waves): plan, sync, verify its users;"
                     " cutover, rollback it")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    _inventory_option(sub)
    sub.set_defaults(run=migrate)

    sub = commands.add_parser("lab", help=lab.__doc__, description=lab.__doc__)
    sub.add_argument("action", choices=["up", "down", "status", "ssh", "login", "destroy"])
    sub.add_argument("host", nargs="*", help="for ssh: the host, then an optional command")
    sub.add_argument("--inventory", "-i", default=str(PROJECT / "inventories/lab.py"), help="lab inventory")
    sub.set_defaults(run=lab)

    sub = commands.add_parser("staging", help=staging.__doc__, description=staging.__doc__)
    sub.add_argument("action", choices=["box", "up", "down", "rebuild"])
    sub.add_argument("--inventory", "-i", default=str(PROJECT / "inventories/staging.py"), help="staging inventory")
    sub.set_defaults(run=staging)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except ValueError as error:  # a password that cannot be used
        print(f"mailstack: {error}", file=sys.stderr)
        return 2
    except LabError as error:
        print(f"mailstack {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
