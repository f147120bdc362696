"""Backups of the mx hosts with BorgBackup, and restores from them.

Each mx host runs ``mailstack-backup`` (``deploys/backup.py``): a systemd timer puts
/var/vmail and the host's own state into one encrypted, deduplicated Borg repository per
cluster on the backup host (``deploys/backup_host.py``), where the mx hosts' key can run
nothing but ``borg serve`` for that repository. The standby mx host (the last one listed:
HAProxy sends everything to the first that answers) takes the backups, so the active one
carries no load; the other takes them only when the standby's have stopped.

This module is the operator's side (``mailstack backup``): it runs the hosts' own tools
over SSH (``mailstack-backup``, ``borg``, ``doveadm``) and reports.
"""

import io
import json
import shlex
import subprocess
import tarfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import keys, mailboxes, ssh
from .config import Config, ConfigError
from .inventory import host_data
from .services import CLUSTERED, QUEUE_FOLDER, TEXTFILES, postfix_units

PASSPHRASE = "borg.pass"
"""The repository key's passphrase, in the secrets folder."""
SSH_KEY = "backup_ed25519"
"""The key the mx hosts log in to the backup host with, in the secrets folder."""
HOME = "/srv/borg"
"""The borg user's home on the backup host; each cluster's repository is a folder in it."""
SETTINGS = "/etc/mailstack/backup"
SCRIPT = "/usr/local/sbin/mailstack-backup"
MAIL_ARCHIVES = "mail-"
STATE_ARCHIVES = "state-"
METRICS = f"{TEXTFILES}/backup.prom"
"""How the last backup of a host went, for the node exporter and ``mailstack status``."""
AGE = "time() - mailstack_backup_last_success_timestamp_seconds > 0"
"""Seconds since each mx host's last good backup, as ``mailstack status`` asks Prometheus."""
MESSAGE_FILES = r"-type f \( -path '*/cur/*' -o -path '*/new/*' \)"
"""find(1) tests for Maildir's message files: empty mailboxes hold none."""
VMAIL = "/var/vmail"
RESTORE_AREA = "/var/tmp/mailstack-restore"
"""Where a restore unpacks an archive's mailbox on the mx host before importing it."""
UID_MARGIN = 1_000_000
"""How far ``restore --cluster`` moves every folder's next UID and highest modseq past the
archive's: further than any folder counts between its archive and the disaster, so no UID that
lost mail had (and clients may have cached) names another message under the same UIDVALIDITY."""
STATE_PATHS = ("/etc/mailstack", "/etc/dovecot", "/etc/postfix", "/etc/rspamd", "/var/lib/rspamd/dkim",
               "/etc/letsencrypt")
"""What each mx host keeps besides mail: its configuration, DKIM keys, certificates and their
ACME accounts, and the secrets these files hold (doveadm's password, the repository key's)."""


def repository_path(config: Config) -> str:
    return f"{HOME}/{config.cluster.name}"


def backup_host(config: Config) -> str:
    return config.hosts_in("backup")[0]


def repository_url(config: Config) -> str:
    address = config.hosts[backup_host(config)].address
    bracketed = f"[{address}]" if address.version == 6 else str(address)
    return f"ssh://borg@{bracketed}:{config.ssh.port}{repository_path(config)}"


def standby(config: Config) -> str:
    """The mx host that takes the backups: the one HAProxy uses only when the first fails."""
    return config.hosts_in("mx")[-1]


def vmail_dataset(config: Config, name: str) -> str | None:
    """The ZFS dataset mounted on /var/vmail of host ``name``, if any: its backups read a
    snapshot of it, every mailbox as it was at one instant, not folders read minutes apart."""
    storage = config.hosts[name].storage
    if storage is None or storage.zfs is None:
        return None
    zfs = storage.zfs
    return next((f"{zfs.pool}/{dataset.name}" for dataset in zfs.datasets if str(dataset.mount_point) == VMAIL),
                None)


def known_host_lines(config: Config, review: bool = False) -> str:
    """The backup host's SSH host keys, from the known_hosts file the deploy trusts."""
    name = backup_host(config)
    data = host_data(config, name)
    known_hosts = Path(data.get("ssh_known_hosts_file", "~/.ssh/known_hosts")).expanduser()
    address = data["ssh_hostname"] if data["ssh_port"] == 22 else f"[{data['ssh_hostname']}]:{data['ssh_port']}"
    found = subprocess.run(["ssh-keygen", "-F", address, "-f", str(known_hosts)], capture_output=True, text=True)
    lines = [line for line in found.stdout.splitlines() if line and not line.startswith("#")]
    if lines:
        return "\n".join(lines) + "\n"
    if review:
        return f"# MISSING: {address} is not in {known_hosts}\n"
    raise ConfigError(config.source, [
        f"{config.source}: the SSH host key of backup host {name} ({address}) is not in {known_hosts};"
        " the mx hosts trust only keys found there (connect to it once)"
    ])


class BackupError(Exception):
    """A backup command that cannot go on, in one line."""


@dataclass(frozen=True)
class Archive:
    name: str
    time: datetime
    """When it began, in the hosts' time (``cluster.timezone``)."""

    @property
    def host(self) -> str:
        return self.name.rpartition("-")[2]


def on_host(config: Config, host: str, command: str, timeout: float = 3600, input: bytes | None = None) -> str:
    """``command``'s output on ``host``; a failure raises ``BackupError`` with what it said."""
    result = ssh.run(config, host, command, timeout=timeout, input=input)
    if result.returncode != 0:
        said = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        raise BackupError(f"{host}: {said[-1] if said else f'{command} failed ({result.returncode})'}")
    return result.stdout.decode(errors="replace")


def on_every_host(config: Config, hosts: list[str], command: str) -> None:
    """``command`` on each of ``hosts`` at once; the first failure raises ``BackupError``."""
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(lambda host: on_host(config, host, command), hosts))


def take(config: Config, host: str | None = None, out=None) -> tuple[str, str]:
    """A backup now by the backup script on ``host`` (the answering mx host by default), which
    writes what it does to ``out`` (this process's standard output by default), then the
    configuration and secrets folder. Returns the host and the state archive's name. A host
    given must hold the mailboxes: the standby of a Debian 13 pair would back up none."""
    host = mailbox_host(config, [host]) if host else answering_mx(config)
    command = ["ssh", "-F", str(ssh.config_file(config)), host, f"{SCRIPT} run"]
    if code := subprocess.run(command, stdout=out).returncode:
        raise BackupError(f"{host}: the backup failed (exit {code}); journalctl -u mailstack-backup on {host}")
    return host, save_state(config, host)


def save_state(config: Config, host: str) -> str:
    """The operator's side of the cluster's state, which no host holds whole: the configuration
    file and its secrets folder (every key and password mailstack made or was given there), as a
    tar file in the archive ``state-<time>``. It goes through ``host`` on SSH's standard input,
    never on a command line."""
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w") as tar:
        tar.add(config.source, arcname=config.source.name)
        tar.add(config.secrets_dir, arcname=f"secrets/{config.cluster.name}")
    name = f"{STATE_ARCHIVES}{datetime.now():%Y-%m-%dT%H:%M:%S}"
    on_host(config, host, f"{SCRIPT} borg create --stdin-name {config.cluster.name}-state.tar ::{name} -",
            input=bundle.getvalue())
    return name


def mailbox_host(config: Config, hosts: list[str]) -> str:
    """The first of ``hosts`` that answers and can read and write the mailboxes: on a Debian 13
    pair only the one Pacemaker mounted them on (DRBD Primary); the other has none."""
    drbd = config.mailbox_replication == "drbd"
    if found := ssh.first_answering(config, hosts, f"mountpoint -q {VMAIL}" if drbd else "true"):
        return found
    raise BackupError(f"no mx host has the mailboxes mounted ({', '.join(hosts)}): crm_mon -1 on either" if drbd
                      else f"no mx host answers over SSH ({', '.join(hosts)})")


def answering_mx(config: Config) -> str:
    """The standby mx host, or the other one if the standby does not answer (of a Debian 13
    pair, the one with the mailboxes)."""
    return mailbox_host(config, sorted(config.hosts_in("mx"), key=lambda name: name != standby(config)))


def archives(config: Config, host: str) -> list[Archive]:
    """The repository's mail archives, oldest first."""
    listed = json.loads(on_host(config, host, f"{SCRIPT} borg list --json --glob-archives '{MAIL_ARCHIVES}*'"))
    return [Archive(found["name"], datetime.fromisoformat(found["time"])) for found in listed["archives"]]


def archive_at(found: list[Archive], at: datetime | None) -> Archive:
    """The newest archive made before ``at`` (or the newest of all)."""
    before = [archive for archive in found if at is None or archive.time <= at]
    if not before:
        since = f" before {at:%Y-%m-%d %H:%M}" if at else ""
        raise BackupError(f"no backup{since} in the repository (oldest: {found[0].time:%Y-%m-%d %H:%M})"
                          if found and at else f"no backup{since} in the repository")
    return before[-1]


@dataclass(frozen=True)
class Restored:
    user: str
    archive: Archive
    folder: str | None
    """The folder restored with those below it; None: the whole mailbox."""
    into: str
    """The folder the restored ones went below: "" for their own places."""
    messages: int
    """Messages put back."""
    present: int
    """Messages of the backup that were still there (in place), left as they are."""


def restore(config: Config, user: str, folder: str | None = None, at: datetime | None = None,
            beside: bool = False, host: str | None = None) -> Restored:
    """Put ``user``'s mailbox (or ``folder`` and those below it) back as it was at ``at``: from the
    newest archive before then, with Dovecot's own ``doveadm import``, so its indexes stay right and
    replication carries the mail to the other mx host. In place, only the messages that are no
    longer there come back (compared by their bytes); ``beside``, every message goes below a new
    folder "Restored <time>" and nothing of the live mailbox changes. Each message put back is then
    found in the mailbox with the bytes (SHA-256) and flags it had."""
    if user not in {configured.address for configured in config.users}:
        raise BackupError(f"{user}: no such user in {config.source}")
    host = host or mailbox_host(config, config.hosts_in("mx"))
    archive = archive_at(archives(config, host), at)
    local, _, domain = user.lower().partition("@")
    maildir = f"var/vmail/{domain}/{local}/Maildir"
    query = mailboxes.search(folder) if folder else "all"
    into = f"Restored {archive.time:%Y-%m-%d %Hh%M}" if beside else ""  # Maildir++ takes no "." in a name
    area = f"install -d -o vmail -g vmail -m 700 {RESTORE_AREA} && mktemp -d -p {RESTORE_AREA}"
    work = on_host(config, host, area).strip()
    try:
        on_host(config, host, f"cd {work} && {SCRIPT} borg extract ::{archive.name} {maildir}"
                              f" && chown -R vmail:vmail {work}")
        location = f"maildir:{work}/{maildir}"
        backed_up = mailboxes.messages(config, host, user, query, location)
        if not backed_up:
            raise BackupError(f"{archive.name} holds no {'folder ' + folder if folder else 'mail'} of {user}")
        live = Counter() if beside else mailboxes.digests(config, host, user, query)
        wanted = _missing(backed_up, live)
        for source, uids in _by_folder(wanted).items():  # the copy's own hierarchy separator is Maildir++'s "."
            on_host(config, host, f"doveadm import -u {shlex.quote(user)} -s {shlex.quote(location)}"
                                  f" {shlex.quote(into)} mailbox {shlex.quote(source.replace('/', '.'))} uid {uids}")
        found = mailboxes.digests(config, host, user, mailboxes.search(into) if beside else query) - live
    finally:
        on_host(config, host, f"rm -rf {work}")
    found = Counter(message._replace(folder=message.folder.removeprefix(f"{into}/")) for message in found.elements())
    restored = Counter(message for message, _ in wanted)
    if missing := restored - found:
        raise BackupError(f"{sum(missing.values())} of the {len(wanted)} messages put back from {archive.name} are"
                          f" not in {user}'s mailbox as they were (first in {next(iter(missing)).folder})")
    return Restored(user, archive, folder, into, len(wanted), len(backed_up) - len(wanted))


def _missing(backed_up: list[tuple[mailboxes.Message, int]], live: Counter) -> list[tuple[mailboxes.Message, int]]:
    """The messages of the backup whose bytes are no longer in their folder (flags aside)."""
    left = Counter((message.folder, message.sha256) for message in live.elements())
    missing = []
    for message, uid in backed_up:
        if left[message.folder, message.sha256]:
            left[message.folder, message.sha256] -= 1
        else:
            missing.append((message, uid))
    return missing


def _by_folder(found: list[tuple[mailboxes.Message, int]]) -> dict[str, str]:
    """The UIDs of each folder's messages, as a doveadm UID set."""
    uids: dict[str, list[str]] = {}
    for message, uid in found:
        uids.setdefault(message.folder, []).append(str(uid))
    return {folder: ",".join(numbers) for folder, numbers in uids.items()}


def export_key(config: Config, host: str, out: Path) -> None:
    """What reads the backups without the cluster: the repository's location, its key (which
    borg keeps in the repository, encrypted) and the key's passphrase, in one 0600 file."""
    key = on_host(config, host, f"{SCRIPT} borg key export :: /dev/stdout", timeout=120)
    passphrase = (config.secrets_dir / PASSPHRASE).read_text().strip()
    keys.write_private(out, (
        f"# The Borg repository of mailstack cluster {config.cluster.name}: keep this offline.\n"
        f"# Import the key with `borg key import REPOSITORY FILE` (the key part below) if the\n"
        f"# repository's own copy is lost; borg asks for the passphrase.\n"
        f"repository: {repository_url(config)}\npassphrase: {passphrase}\n\n{key}"
    ).encode())


@dataclass(frozen=True)
class ClusterRestored:
    archive: Archive
    hosts: list[str]
    users: int
    messages: int
    bytes: int
    seconds: float


def past_the_archive(states: dict[str, list[dict]]) -> str:
    """The shell commands that move each folder of ``states`` (``mailboxes.states``) ``UID_MARGIN``
    past its next UID and highest modseq; a folder's GUID and UIDVALIDITY stay as they are."""
    return "".join(
        f"doveadm mailbox update -u {shlex.quote(user)} --min-next-uid {int(found['uidnext']) + UID_MARGIN}"
        f" --min-highest-modseq {int(found['highestmodseq']) + UID_MARGIN} -- {shlex.quote(found['mailbox'])}\n"
        for user, folders in states.items() for found in folders)


def _move_past_the_archive(config: Config, hosts: list[str], users: list[str]) -> None:
    """``past_the_archive`` on every host, with the same figures: read on the first host, whose
    archive every host unpacked. Dovecot answers doveadm only while it runs, and a running
    Dovecot replicates, so each host runs it alone in turn. (A new UIDVALIDITY instead would
    give each host its own folder GUIDs, which replication refuses.)"""
    commands = ""
    for host in hosts:
        on_host(config, host, "systemctl start dovecot")
        try:
            commands = commands or past_the_archive(mailboxes.states(config, host, users))
            on_host(config, host, "sh -es", input=commands.encode())
        finally:
            on_host(config, host, "systemctl stop dovecot")


def _held_alike(config: Config, hosts: list[str], users: list[str], limit: float = 60) -> dict[str, Counter]:
    """Each user's messages (``mailboxes.index``) once every host holds the same, with the same
    folders (GUID and UIDVALIDITY). Users reading mail meanwhile change flags on one host first,
    so the copies may differ for as long as replication takes to carry a change."""
    deadline = time.monotonic() + limit
    while True:
        held = {host: mailboxes.index(config, host, users) for host in hosts}
        folders = {host: {user: sorted((f["mailbox"], f["guid"], f["uidvalidity"]) for f in found)
                          for user, found in mailboxes.states(config, host, users).items()} for host in hosts}
        differing = [user for user in users if len({str((held[h][user], folders[h][user])) for h in hosts}) > 1]
        if not differing:
            return held[hosts[0]]
        if time.monotonic() > deadline:
            raise BackupError(f"after the restore the mx hosts still hold different mail for {', '.join(differing)}"
                              f" after {limit:.0f} s; Postfix stays stopped on them")
        time.sleep(2)


def restore_cluster(config: Config, at: datetime | None = None) -> ClusterRestored:
    """Rebuild every mailbox on mx hosts that lost theirs (new, empty hosts after a disaster):
    each host unpacks /var/vmail from the same archive at once, with Postfix and Dovecot
    stopped meanwhile; every folder's next UID moves past the archive's, and Dovecot checks every
    index. Both hosts then hold the same mailboxes, which replication finds in sync, and only then
    does Postfix take mail again. Hosts that still hold mail are refused: restore one user instead.

    A Debian 13 pair has one /var/vmail, on the host Pacemaker mounted it on (DRBD copies it to
    the other): only that host is restored, with Pacemaker leaving Postfix and Dovecot alone
    meanwhile (their resources in maintenance, given back at the end; left so, with the
    services stopped, should the restore fail)."""
    started = time.monotonic()
    drbd = config.mailbox_replication == "drbd"
    hosts = [mailbox_host(config, config.hosts_in("mx"))] if drbd else config.hosts_in("mx")
    users = [user.address for user in config.users]
    for host in hosts:
        if held := on_host(config, host, f"find {VMAIL} {MESSAGE_FILES} -print | head -n 3").split():
            raise BackupError(f"{host}: {VMAIL} still holds mail ({', '.join(held)}): restore --cluster"
                              " rebuilds lost mx hosts; to bring back one user's mail use --user")
    archive = archive_at(archives(config, hosts[0]), at)
    if drbd:
        left_alone_by_pacemaker(config, hosts[0], True)
    # No host may start (and replicate) before every host holds the archive's mailboxes.
    postfix = postfix_units(config.release_of(hosts[0]))
    on_every_host(config, hosts, f"systemctl stop {postfix} dovecot")
    # The queue of a Debian 13 pair lies beside the mailboxes (deploys/drbd.py) and stays as it is.
    on_every_host(config, hosts, f"find {VMAIL} -mindepth 1 -maxdepth 1 ! -name {QUEUE_FOLDER} -exec rm -rf {{}} +"
                                 f" && cd / && {SCRIPT} borg extract ::{archive.name} {VMAIL.lstrip('/')}"
                                 f" --exclude {VMAIL.lstrip('/')}/{QUEUE_FOLDER}")
    _move_past_the_archive(config, hosts, users)
    on_every_host(config, hosts, "systemctl start dovecot && doveadm force-resync -A '*'")
    if not drbd:
        # A replicator that started before its peer listened marked every user failed, and would
        # try them again only after 5 minutes: now that all listen, every user is synced at once.
        on_every_host(config, hosts, "doveadm replicator replicate -f '*' >/dev/null")
    held = _held_alike(config, hosts, users)
    # Postfix starts only now: mail that waited (alerts about this very outage) would otherwise
    # land on one host while the copies are compared.
    on_every_host(config, hosts, f"systemctl start {postfix}")
    if drbd:
        left_alone_by_pacemaker(config, hosts[0], False)
    size = on_host(config, hosts[0], f"du -sb {VMAIL}").split()[0]
    messages = sum(sum(found.values()) for found in held.values())
    return ClusterRestored(archive, hosts, len(config.users), messages, int(size), time.monotonic() - started)


def left_alone_by_pacemaker(config: Config, host: str, alone: bool) -> None:
    """Pacemaker's resources for Dovecot and Postfix in maintenance (it neither starts, stops nor
    monitors them meanwhile), or out of it again, as deployed (docs/backups.md)."""
    on_host(config, host, " && ".join(
        f"crm_resource --resource {service} --meta "
        + ("--set-parameter maintenance --parameter-value true" if alone else "--delete-parameter maintenance")
        for service in CLUSTERED))
