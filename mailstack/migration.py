"""Migration from an organisation's old IMAP server onto the cluster (``mailstack migrate``,
docs/migration.md).

Dovecot copies: on the active mx host, ``doveadm backup -R`` with Dovecot's imapc storage makes
each user's mailbox equal to the one on the old server. dsync compares what both sides hold, so
a re-run moves only what changed there (new mail, flags, deletions) and a run that was killed is
finished by the next without a duplicate. mailstack plans, runs users in parallel, reports
progress and verifies on its own: it reads every message of both sides over IMAP and compares
the SHA-256 of its bytes, its flags and its INTERNALDATE, folder by folder.
"""

import base64
import getpass
import hashlib
import imaplib
import json
import math
import re
import secrets
import shlex
import socket
import ssl
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import yaml

from . import backup, certificates, keys, mailboxes, ssh, users
from .component import ManagedFile
from .config import Config, ConfigError

MASTER_USER = "mailstack-migrate"
"""The cluster's Dovecot master login (``user*mailstack-migrate``): verify reads every mailbox
with it. It exists only while the configuration has a ``migration`` section."""
MASTER_PASSWORD = "migrate.pass"
STATE = "/var/lib/mailstack/migration"
ROUTES = "/etc/mailstack/migration"
TRANSPORT = f"{ROUTES}/transport"
"""Postfix's transport for the users not cut over: relayed to the old server, or held."""
PROXIED = f"{ROUTES}/proxied"
"""Dovecot's passdb extra fields for the users not cut over: proxied to the old server, or refused."""
OLD, HELD, MOVED = "old", "held", "moved"
NO_PASSWORD = ":::::::nopassword=y "
"""A proxied line's empty password, uid, gid, gecos, home and shell, and its first extra field:
this passdb checks no password, Dovecot's next one checks it on the old server."""
METRICS = "/var/lib/prometheus/node-exporter/mailstack_migration.prom"
LAB_ADMIN = "admin"


class MigrationError(Exception):
    pass


# The old server and its logins.

@dataclass(frozen=True)
class Credentials:
    """Logins on the old server: one admin who may act as every user (SASL PLAIN with an
    authorization identity), or a password per user, or both (a user's own wins)."""

    source: Path
    master_user: str | None = None
    master_password: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    def login(self, user: str) -> tuple[str, str]:
        """Who authenticates for ``user`` (the user or the admin) and with which password."""
        if user in self.passwords:
            return user, self.passwords[user]
        if self.master_user:
            return self.master_user, self.master_password
        raise MigrationError(f"{self.source}: passwords: no password for {user}, and no master_user")


def _problem(path: Path, key: str, text: str) -> ConfigError:
    return ConfigError(path, [f"{path}: {key}: {text}"])


def _one_line(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value or re.search(r"[\x00-\x1f\x7f]", value):
        raise _problem(path, key, "must be one line of text")
    return value


def credentials(config: Config) -> Credentials:
    """The logins of ``migration.credentials``, refused unless only its owner can read them."""
    path = config.path(config.migration.credentials)
    try:
        mode = path.stat().st_mode
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(path, [f"{path}: cannot read the migration credentials: {error}"]) from None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(path, [f"{path}: mode {stat.S_IMODE(mode):o}: others may read these passwords;"
                                 f" chmod 600 {path}"])
    if not isinstance(loaded, dict) or not loaded.keys() <= {"master_user", "master_password", "passwords"}:
        raise ConfigError(path, [f"{path}: expected master_user, master_password and/or passwords"])
    passwords = loaded.get("passwords") or {}
    if not isinstance(passwords, dict):
        raise _problem(path, "passwords", "must map each address to its password")
    master = loaded.get("master_user")
    if master is not None and "master_password" not in loaded:
        raise _problem(path, "master_password", "missing (master_user needs it)")
    return Credentials(
        path,
        _one_line(path, "master_user", master) if master is not None else None,
        _one_line(path, "master_password", loaded["master_password"]) if master is not None else None,
        {_one_line(path, "passwords", user): _one_line(path, f"passwords: {user}", password)
         for user, password in passwords.items()},
    )


def make_lab_credentials(config: Config) -> None:
    """The lab's old server gets an admin login with a random password, made once."""
    path = config.path(config.migration.credentials)
    if not path.exists():
        password = secrets.token_urlsafe(18)
        keys.write_private(path, yaml.safe_dump({"master_user": LAB_ADMIN, "master_password": password}).encode())


@dataclass(frozen=True)
class Source:
    host: str
    port: int


def source(config: Config) -> Source:
    match = re.fullmatch(r"imaps://([^/:]+)(?::(\d+))?/?", config.migration.source)
    return Source(match[1], int(match[2] or 993))


def _address_of(config: Config, name: str) -> str:
    """Where ``name`` is reached: a host of the inventory by its address (the lab's old server
    has no DNS entry that this machine resolves), anything else by DNS."""
    for host, settings in config.hosts.items():
        if name in (host, config.host_fqdn(host)):
            return str(settings.address)
    return name


class _Imaps(imaplib.IMAP4_SSL):
    """IMAPS to ``address``, whose certificate must name ``host``."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext):
        self.address = address
        super().__init__(host, port, ssl_context=context, timeout=60)

    def _create_socket(self, timeout):
        connection = socket.create_connection((self.address, self.port), timeout)
        return self.ssl_context.wrap_socket(connection, server_hostname=self.host)


def _login(where: str, host: str, address: str, port: int, roots: str, user: str, authenticator: str,
           password: str) -> imaplib.IMAP4_SSL:
    """An IMAPS session as ``user``, authenticated as ``authenticator`` (SASL PLAIN); certificates
    are checked against the system's roots and ``roots`` (PEM)."""
    context = ssl.create_default_context()
    if roots:
        context.load_verify_locations(cadata=roots)
    try:
        imap = _Imaps(host, address, port, context)
    except ssl.SSLCertVerificationError as error:
        raise MigrationError(f"{where} imaps://{host}:{port}: its certificate is not trusted: {error.verify_message}"
                             ) from None
    except OSError as error:
        raise MigrationError(f"{where} imaps://{host}:{port} does not answer: {error}") from None
    imap.sock.settimeout(600)
    authorize = "" if authenticator == user else user
    try:
        imap.authenticate("PLAIN", lambda _: f"{authorize}\0{authenticator}\0{password}".encode())
    except imaplib.IMAP4.error:
        imap.shutdown()
        as_whom = f" (as {authenticator})" if authorize else ""
        raise MigrationError(f"{where}: the login of {user}{as_whom} was refused; check its password") from None
    return imap


def source_session(config: Config, user: str, login: Credentials, as_admin: bool = False) -> imaplib.IMAP4_SSL:
    """``user``'s mailbox on the old server; with ``as_admin``, the admin's own session."""
    where = source(config)
    roots = config.path(config.migration.ca).read_text() if config.migration.ca else ""
    authenticator, password = (login.master_user, login.master_password) if as_admin else login.login(user)
    return _login("the old server", where.host, _address_of(config, where.host), where.port, roots,
                  authenticator if as_admin else user, authenticator, password)


def cluster_session(config: Config, user: str) -> imaplib.IMAP4_SSL:
    """``user``'s mailbox on the cluster, as its clients reach it (the virtual IP), by the master login."""
    password = (config.secrets_dir / MASTER_PASSWORD).read_text().strip()
    return _login("the cluster", config.cluster.mail_hostname, str(config.cluster.virtual_ip), 993,
                  certificates.extra_roots(config), user, f"{user}*{MASTER_USER}", password)


def master_hash(password: str) -> str:
    """The master login's SHA512-CRYPT hash, salted from the password itself so that every
    render makes the same file (a random salt would change it on each deploy)."""
    digest = hashlib.sha256(b"mailstack-migrate\0" + password.encode()).digest()
    return users.hash_password(password, salt=base64.b64encode(digest, altchars=b"./").decode()[:16])


# Reading a mailbox over IMAP.

@dataclass(frozen=True)
class Message:
    sha256: str
    flags: str
    internaldate: int
    """Seconds since the epoch."""


@dataclass
class Folder:
    name: str
    messages: dict[int, Message] = field(default_factory=dict)
    """By UID."""
    sizes: int = 0
    subscribed: bool = False
    use: str = ""
    """Its special use (RFC 6154), such as \\Sent, if the server names one."""


_FETCHED = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"|RFC822\.SIZE (\d+)")


def _folders(imap: imaplib.IMAP4_SSL, command: str = "LIST") -> dict[str, set[str]]:
    """Every selectable folder (``LSUB``: every subscribed one), in the server's own names (IMAP's
    modified UTF-7), with its attributes."""
    typ, listed = imap.lsub() if command == "LSUB" else imap.list()
    folders = {}
    for line in listed:
        if isinstance(line, tuple):  # the name came as a literal
            match = re.match(rb'\(([^)]*)\) ', line[0])
            name = line[1]
        elif line:
            match = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
            name = match[2]
            if name.startswith(b'"'):
                name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        else:
            continue
        attributes = set(match[1].decode().split())
        if not {"\\noselect", "\\nonexistent"} & {attribute.lower() for attribute in attributes}:
            folders[name.decode()] = attributes
    return folders


def _use(attributes: set[str]) -> str:
    """The special use among a folder's LIST attributes that the cluster has a folder for."""
    return next((one for one in sorted(attributes) if one in mailboxes.SPECIAL_USES), "")


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetch(imap: imaplib.IMAP4_SSL, folder: str, items: str) -> Iterable[tuple[dict, bytes | None]]:
    typ, _ = imap.select(quoted(folder), readonly=True)
    if typ != "OK":
        raise MigrationError(f"cannot open folder {folder}")
    typ, data = imap.uid("FETCH", "1:*", f"({items})")
    for part in data:
        if isinstance(part, tuple):
            head, body = part
        elif part and b"UID" in part:
            head, body = part, None
        else:
            continue
        found = {}
        for match in _FETCHED.finditer(head):
            uid, flags, date, size = match.groups()
            if uid:
                found["uid"] = int(uid)
            elif flags is not None:
                found["flags"] = " ".join(sorted(set(flags.decode().split()) - mailboxes.EPHEMERAL_FLAGS))
            elif date:
                found["date"] = int(datetime.strptime(date.decode(), "%d-%b-%Y %H:%M:%S %z").timestamp())
            elif size:
                found["size"] = int(size)
        yield found, body


def sizes(imap: imaplib.IMAP4_SSL) -> list[Folder]:
    """Each folder with its message count and bytes (nothing but sizes is read)."""
    folders = []
    for name in _folders(imap):
        folder = Folder(name)
        for found, _ in _fetch(imap, name, "RFC822.SIZE"):
            folder.messages[found["uid"]] = None
            folder.sizes += found["size"]
        folders.append(folder)
    return folders


def contents(imap: imaplib.IMAP4_SSL) -> dict[str, Folder]:
    """Every message of every folder: the SHA-256 of its bytes, its flags and INTERNALDATE; and
    whether the folder is subscribed."""
    folders = {}
    subscribed = _folders(imap, "LSUB")
    for name, attributes in _folders(imap).items():
        folder = Folder(name, subscribed=name in subscribed, use=_use(attributes))
        for found, body in _fetch(imap, name, "FLAGS INTERNALDATE BODY.PEEK[]"):
            folder.messages[found["uid"]] = Message(hashlib.sha256(body or b"").hexdigest(), found["flags"],
                                                    found["date"])
            folder.sizes += len(body or b"")
        folders[name] = folder
    return folders


# The plan.

@dataclass
class UserPlan:
    user: str
    folders: int
    messages: int
    bytes: int
    quota: int

    @property
    def fits(self) -> bool:
        return self.bytes <= self.quota


def check_users(config: Config, wanted: Iterable[str]) -> list[str]:
    """``wanted`` (all of the configuration's users if empty), each one of them."""
    known = [user.address for user in config.users]
    chosen = list(wanted) or known
    unknown = [user for user in chosen if user not in known]
    if unknown:
        raise ConfigError(config.source, [f"--user: no user {', '.join(unknown)} in {config.source}"
                                          " (a migrated user must be in the configuration first)"])
    return chosen


def quota(config: Config, user: str) -> int:
    found = next(entry for entry in config.users if entry.address == user)
    return found.quota or config.mail.default_quota


def plan(config: Config, chosen: list[str], login: Credentials) -> list[UserPlan]:
    """What each user holds on the old server and whether it fits their quota on the cluster
    (``migration.parallel`` users read at once)."""
    def one(user: str) -> UserPlan:
        imap = source_session(config, user, login)
        try:
            folders = sizes(imap)
        finally:
            imap.logout()
        return UserPlan(user, len(folders), sum(len(folder.messages) for folder in folders),
                        sum(folder.sizes for folder in folders), quota(config, user))

    with ThreadPoolExecutor(config.migration.parallel) as pool:
        return list(pool.map(one, chosen))


# The copy.

def active_mx(config: Config) -> str:
    """The mx host HAProxy sends mail and logins to (``balance first``), or the other if it is down."""
    if found := ssh.first_answering(config, config.hosts_in("mx")):
        return found
    raise MigrationError(f"no mx host answers over SSH ({', '.join(config.hosts_in('mx'))})")


def _dovecot_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imapc_settings(config: Config, user: str, login: Credentials) -> str:
    """Dovecot settings that read ``user``'s mailbox on the old server, password included: they
    reach doveadm through a 0600 file, never a command line."""
    where = source(config)
    authenticator, password = login.login(user)
    settings = {
        "imapc_host": where.host, "imapc_port": str(where.port), "imapc_ssl": "imaps",
        "imapc_user": user, "imapc_password": password,
        "imapc_features": "rfc822.size fetch-headers modseq", "mail_prefetch_count": "20",
    }
    if authenticator != user:
        settings["imapc_master_user"] = authenticator
    return "!include /etc/dovecot/dovecot.conf\n" + "".join(
        f"{key} = {_dovecot_value(value)}\n" for key, value in settings.items())


_IMAPC_CONF = """dir=$(mktemp -d /run/mailstack-migrate.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
(umask 077 && cat > "$dir/imapc.conf")  # the settings, a password among them, come on stdin
"""
_SYNC = "set -u\n" + _IMAPC_CONF + """guids() {{ doveadm -f flow fetch -u {user} guid all 2>/dev/null | sort; }}
guids > "$dir/before" || exit 1
for attempt in $(seq 20); do
    doveadm -c "$dir/imapc.conf" backup -R -u {user} imapc: && status=0 || status=$?
    # 2: done, but another pass is needed; 75: a folder was made anew, the rest waits for the next pass
    [ "$status" = 2 ] || [ "$status" = 75 ] || break
done
guids > "$dir/after" || exit 1
# a full replication to the peer now: one cut short (a killed run) would wait a day for the next
doveadm replicator replicate -f {user} >/dev/null 2>&1 || true
echo "added $(comm -13 "$dir/before" "$dir/after" | wc -l) removed $(comm -23 "$dir/before" "$dir/after" | wc -l)"
exit "$status"
"""


@dataclass
class Synced:
    user: str
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    error: str | None = None


def sync_user(config: Config, host: str, user: str, login: Credentials) -> Synced:
    started = time.monotonic()
    if problem := remove_if_empty(config, user):
        return Synced(user, error=f"could not remove the empty mailbox a login made: {problem}")
    result = ssh.run(config, host, _SYNC.format(user=shlex.quote(user)),
                     input=imapc_settings(config, user, login).encode(), timeout=6 * 3600)
    counted = re.search(rb"added (\d+) removed (\d+)", result.stdout)
    synced = Synced(user, seconds=time.monotonic() - started)
    if counted:
        synced.added, synced.removed = int(counted[1]), int(counted[2])
    if result.returncode != 0:
        said = _complaints(result.stderr)
        synced.error = f"doveadm backup failed (exit {result.returncode}): {said[-400:]}"
        if "INBOX can't be deleted" in said:
            synced.error += (f"; {user}'s INBOX on the cluster was not made by this migration, or the old server"
                             " made the user's INBOX anew: see docs/migration.md, 'A diverged INBOX'")
    return synced


def _complaints(stderr: bytes) -> str:
    """What doveadm said, without its lines of information (every imapc connection has one)."""
    return "\n".join(line for line in stderr.decode(errors="replace").splitlines() if ": Info: " not in line).strip()


def stored(config: Config, host: str, chosen: list[str]) -> dict[str, tuple[int, int]]:
    """Messages and bytes each user holds on ``host`` now (Dovecot's index, one SSH round trip)."""
    loop = "; ".join(f"echo {shlex.quote(user)} $(doveadm -f flow mailbox status -u {shlex.quote(user)}"
                     " -t 'messages vsize' '*' 2>/dev/null)" for user in chosen)
    result = ssh.run(config, host, loop or "true", timeout=120)
    found = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        match = re.match(r"(\S+) messages=(\d+) vsize=(\d+)", line)
        if match:
            found[match[1]] = (int(match[2]), int(match[3]))
    return found


def sync(config: Config, plans: list[UserPlan], login: Credentials,
         report: Callable[[str], None] = lambda line: None, every: float = 5.0) -> list[Synced]:
    """Copy every planned user that fits onto the active mx host, ``migration.parallel`` at once,
    reporting progress every ``every`` seconds."""
    current = states(config)
    if moved := [plan.user for plan in plans if current.get(plan.user) == MOVED]:
        raise MigrationError(f"cut over already: {', '.join(moved)}; a sync would delete the mail that reached"
                             " them on the cluster since (docs/migration.md)")
    host = active_mx(config)
    done: list[Synced] = [Synced(plan.user, error=f"does not fit: {plan.bytes} bytes on the old server,"
                                 f" quota {plan.quota}") for plan in plans if not plan.fits]
    todo = [plan for plan in plans if plan.fits]
    total_bytes = sum(plan.bytes for plan in todo) or 1
    started = time.monotonic()
    finished = threading.Event()

    def ticker():
        while not finished.wait(every):
            now = stored(config, host, [plan.user for plan in todo])
            copied = sum(min(now.get(plan.user, (0, 0))[1], plan.bytes) for plan in todo)
            messages = sum(now.get(plan.user, (0, 0))[0] for plan in todo)
            report(progress_line(len(done), len(plans), messages, copied, total_bytes,
                                 time.monotonic() - started, sum(1 for one in done if one.error)))

    watcher = threading.Thread(target=ticker, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(config.migration.parallel) as pool:
            futures = [pool.submit(sync_user, config, host, plan.user, login) for plan in todo]
            for future in as_completed(futures):
                done.append(future.result())
                one = done[-1]
                report(f"{one.user}: " + (f"FAILED: {one.error}" if one.error else
                       f"{one.added} messages added, {one.removed} removed in {one.seconds:.1f} s"))
    finally:
        finished.set()
        watcher.join()
    return done


def progress_line(users: int, total: int, messages: int, copied: int, total_bytes: int, seconds: float,
                  errors: int) -> str:
    rate = copied / seconds if seconds else 0.0
    eta = (total_bytes - copied) / rate if rate else None
    return (f"users {users}/{total}, {messages} messages, {copied / 1e6:.1f}/{total_bytes / 1e6:.1f} MB,"
            f" {rate / 1e6:.2f} MB/s, ETA {f'{eta:.0f} s' if eta is not None else '-'}, errors {errors}")


def metrics(done: list[Synced], plans: list[UserPlan]) -> str:
    """The last run, for Prometheus's node exporter (textfile collector)."""
    ok = [one for one in done if not one.error]
    lines = [
        "# HELP mailstack_migration_users Users of the last mailstack migrate sync, by outcome.",
        "# TYPE mailstack_migration_users gauge",
        f'mailstack_migration_users{{outcome="synced"}} {len(ok)}',
        f'mailstack_migration_users{{outcome="failed"}} {len(done) - len(ok)}',
        "# HELP mailstack_migration_messages_added Messages the last sync added on the cluster.",
        "# TYPE mailstack_migration_messages_added gauge",
        f"mailstack_migration_messages_added {sum(one.added for one in ok)}",
        "# HELP mailstack_migration_source_bytes Bytes the last sync's users hold on the old server.",
        "# TYPE mailstack_migration_source_bytes gauge",
        f"mailstack_migration_source_bytes {sum(plan.bytes for plan in plans)}",
        "# HELP mailstack_migration_last_sync_timestamp_seconds When the last sync ended.",
        "# TYPE mailstack_migration_last_sync_timestamp_seconds gauge",
        f"mailstack_migration_last_sync_timestamp_seconds {time.time():.0f}",
    ]
    return "\n".join(lines) + "\n"


# The record: every step, with who ran it, on every mx host.

def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def record(config: Config, step: str, entries: list[dict], metrics_text: str | None = None) -> None:
    """Append ``entries`` (one per user) to the log on every mx host that answers."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = "".join(json.dumps({"time": stamp, "who": who(), "step": step, **entry}) + "\n" for entry in entries)
    command = f"install -d -m 700 {STATE} && cat >> {STATE}/log.jsonl"
    if metrics_text is not None:
        command = f"{command} && printf %s {shlex.quote(metrics_text)} > {METRICS}.tmp && mv {METRICS}.tmp {METRICS}"
    for host in config.hosts_in("mx"):
        ssh.run(config, host, command, input=lines.encode(), timeout=60)


def history(config: Config) -> list[dict]:
    """Every recorded step, oldest first, from the first mx host that has the log."""
    for host in config.hosts_in("mx"):
        result = ssh.run(config, host, f"cat {STATE}/log.jsonl 2>/dev/null || true", timeout=60)
        if result.returncode == 0 and result.stdout:
            return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]
    return []


def status(config: Config) -> dict[str, dict]:
    """Each user's latest plan, sync and verification."""
    users: dict[str, dict] = {user.address: {} for user in config.users}
    for entry in history(config):
        users.setdefault(entry["user"], {})[entry["step"]] = entry
    return {user: steps for user, steps in users.items() if steps}


# The verification.

@dataclass
class Difference:
    user: str
    folder: str
    kind: str  # missing, extra, altered, missing folder, extra folder, subscription
    detail: str

    def __str__(self) -> str:
        return f"{self.user}: {readable(self.folder)}: {self.kind}: {self.detail}"


def modified_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501, 5.1.3), as servers without UTF8=ACCEPT take it."""
    out, pending = [], ""
    for char in name + "\0":
        if " " <= char <= "~" or char == "\0":
            if pending:
                encoded = base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
                out.append(f"&{encoded}-")
                pending = ""
            if char != "\0":
                out.append("&-" if char == "&" else char)
        else:
            pending += char
    return "".join(out)


def readable(name: str) -> str:
    """A folder name from IMAP's modified UTF-7 (RFC 3501, 5.1.3) into Unicode."""
    return re.sub(r"&([^-]*)-", lambda match: "&" if not match[1] else
                  base64.b64decode(match[1].replace(",", "/") + "=" * (-len(match[1]) % 4)).decode("utf-16-be"),
                  name)


def _key(message: Message) -> tuple:
    return message.sha256, message.flags, message.internaldate


def compare(user: str, old: dict[str, Folder], new: dict[str, Folder]) -> list[Difference]:
    """Every way ``new`` (the cluster) differs from ``old`` (the old server), folder by folder."""
    differences = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            differences.append(Difference(user, name, "missing folder", f"{len(old[name].messages)} messages"))
            continue
        if name not in old:
            if new[name].messages:  # the cluster's own empty special folders are no difference
                differences.append(Difference(user, name, "extra folder", f"{len(new[name].messages)} messages"))
            continue
        if old[name].subscribed != new[name].subscribed:
            differences.append(Difference(user, name, "subscription", "subscribed on the "
                                          + ("old server only" if old[name].subscribed else "cluster only")))
        differences += _compare_folder(user, name, old[name], new[name])
    return differences


def _compare_folder(user: str, name: str, old: Folder, new: Folder) -> list[Difference]:
    wanted = Counter(_key(message) for message in old.messages.values())
    held = Counter(_key(message) for message in new.messages.values())
    only_old, only_new = wanted - held, held - wanted
    missing = [(uid, message) for uid, message in old.messages.items() if _take(only_old, _key(message))]
    extra = [(uid, message) for uid, message in new.messages.items() if _take(only_new, _key(message))]
    differences = []
    for uid, message in missing:
        twin = next(((other_uid, other) for other_uid, other in extra
                     if other.internaldate == message.internaldate), None)
        if twin:  # same message, other content or flags
            extra.remove(twin)
            what = "bytes" if twin[1].sha256 != message.sha256 else "flags"
            differences.append(Difference(user, name, "altered", f"old UID {uid}, cluster UID {twin[0]}: {what}"
                                          f" (sha256 {message.sha256[:12]} flags [{message.flags}] on the old server,"
                                          f" sha256 {twin[1].sha256[:12]} flags [{twin[1].flags}] on the cluster)"))
        else:
            differences.append(Difference(user, name, "missing", f"old UID {uid}, sha256 {message.sha256[:12]}"))
    differences += [Difference(user, name, "extra", f"cluster UID {uid}, sha256 {message.sha256[:12]}")
                    for uid, message in extra]
    return differences


def _take(surplus: Counter, key: tuple) -> bool:
    """Whether one more of ``key`` is in ``surplus`` (and count it taken)."""
    if surplus[key] > 0:
        surplus[key] -= 1
        return True
    return False


@dataclass
class Verified:
    user: str
    messages: int
    bytes: int
    differences: list[Difference]


def both_sides(config: Config, user: str, login: Credentials) -> tuple[dict[str, Folder], dict[str, Folder]]:
    """``user``'s mailbox on the old server and on the cluster, every message read."""
    sides = []
    for session in (lambda: source_session(config, user, login), lambda: cluster_session(config, user)):
        imap = session()
        try:
            sides.append(contents(imap))
        finally:
            imap.logout()
    return sides[0], sides[1]


def verify_user(config: Config, user: str, login: Credentials, cut_over: bool = False) -> Verified:
    """``user``'s mailbox on the cluster against the old server's; once ``cut_over``, with the
    old server's special-use folders under the cluster's names."""
    old, new = both_sides(config, user, login)
    return Verified(user, sum(len(folder.messages) for folder in old.values()),
                    sum(folder.sizes for folder in old.values()),
                    compare(user, as_renamed(old) if cut_over else old, new))


# Special-use folders: at cut-over, the old server's names become the cluster's (Sent Items: Sent).

def special_renames(uses: dict[str, str]) -> dict[str, str]:
    """For folders by name with their special use (RFC 6154), the cluster's name of each whose
    name there differs."""
    return {name: mailboxes.SPECIAL_USES[use] for name, use in uses.items()
            if use in mailboxes.SPECIAL_USES and mailboxes.SPECIAL_USES[use] != name}


def renamed(name: str, renames: dict[str, str]) -> str:
    """``name``, or the name of a folder below it, after ``renames``."""
    for old, new in renames.items():
        if name == old or name.startswith(old + "/"):
            return new + name[len(old):]
    return name


def as_renamed(old: dict[str, Folder]) -> dict[str, Folder]:
    """The old server's mailbox as the cluster holds it after the cut-over renamed its special
    folders (which the cluster always subscribes)."""
    renames = special_renames({name: folder.use for name, folder in old.items()})
    return {renamed(name, renames): replace(folder, subscribed=folder.subscribed or name in renames)
            for name, folder in old.items()}


_RENAME = """set -eu
# without the replication plugin: the peer learns of the renames from one full sync at the
# end, not of each step while it happens
doveadm() {{ command doveadm -o mail_plugins= "$@"; }}
user={user}
rename() {{  # the cluster's own folder, made empty at the first login, gives way to the old one
    old=$1 new=$2
    doveadm mailbox status -u "$user" messages "$old" >/dev/null 2>&1 || return 0  # not here yet
    for attempt in 1 2 3 4 5; do
        held=$(doveadm -f flow mailbox status -u "$user" messages "$new" | sed 's/.* messages=//')
        if [ "$held" != 0 ]; then
            echo "$new already holds $held messages on the cluster: $old cannot become $new" >&2
            return 1
        fi
        doveadm mailbox delete -u "$user" "$new"
        below=$(doveadm mailbox list -s -u "$user" "$old/*")  # rename -s moves only the top's subscription
        # a sync that lists the user's folders meanwhile makes the cluster's own again
        if doveadm mailbox rename -s -u "$user" "$old" "$new"; then
            printf '%s\\n' "$below" | while IFS= read -r name; do
                [ -z "$name" ] || doveadm mailbox unsubscribe -u "$user" "$name"
                [ -z "$name" ] || doveadm mailbox subscribe -u "$user" "$new${{name#"$old"}}"
            done
            return 0
        fi
        sleep 1
    done
    return 1
}}
{renames}
"""


_SETTLED = """user={user}
for attempt in $(seq 120); do
    queued=$(doveadm -f tab replicator status "$user" | awk -F '\\t' 'NR > 1 && $2 != "none"')
    running=$(doveadm -f tab replicator dsync-status | awk -F '\\t' -v user="$user" '$1 == user')
    [ -n "$queued$running" ] || exit 0
    sleep 1
done
echo "a replication of $user was still queued or running after 120 s:" \
    "${{queued:+queued: $queued }}${{running:+running: $running}}" >&2
exit 1
"""


def rename_special_folders(config: Config, host: str, user: str, login: Credentials) -> str | None:
    """Give ``user``'s special folders on the cluster the cluster's names, the folders below
    them included; or say why not. Every mx host renames alike (first ``host``, which holds the
    copy), so replication finds both sides agreeing instead of two folders of one name. No
    replication of the user may run meanwhile: one that lists the folders between one host's
    renames and the other's makes the cluster's own anew there, and the two then conflict
    (``Junk-temp-1``). The copy before queued one; the held user makes no new one."""
    imap = source_session(config, user, login)
    try:
        listed = _folders(imap)
    finally:
        imap.logout()
    renames = special_renames({name: _use(attributes) for name, attributes in listed.items()})
    if not renames:
        return None
    for where in config.hosts_in("mx"):
        result = ssh.run(config, where, _SETTLED.format(user=shlex.quote(user)), timeout=180)
        if result.returncode != 0:
            return f"{where}: {_complaints(result.stderr)[-300:]}"
    script = _RENAME.format(user=shlex.quote(user), renames="\n".join(
        f"rename {shlex.quote(readable(old))} {shlex.quote(new)}" for old, new in renames.items()))
    for where in (host, *(other for other in config.hosts_in("mx") if other != host)):
        result = ssh.run(config, where, script, timeout=600)
        if result.returncode != 0:
            return f"{where}: renaming the special folders: {_complaints(result.stderr)[-300:]}"
    ssh.run(config, host, f"doveadm replicator replicate -f {shlex.quote(user)} >/dev/null", timeout=60)
    return None


# Passwords: users keep the one they had on the old server.

IMPORTED, UNCHANGED = "imported", "unchanged"


def import_passwords(config: Config, chosen: list[str], login: Credentials) -> dict[str, str]:
    """Each chosen user's own password on the old server (``passwords`` in the credentials),
    proven by logging in there with it, written into the configuration as its hash, as
    ``mailstack user passwd`` does. Nothing is written unless every password was accepted.
    Returns each user's outcome: imported, unchanged, or why not."""
    having = [user for user in chosen if user in login.passwords]
    with ThreadPoolExecutor(config.migration.parallel) as pool:
        errors = [error for error in pool.map(lambda user: _refusal(config, user, login), having) if error]
    if errors:
        raise MigrationError("; ".join(errors) + f" ({login.source}); nothing was imported")
    current = {user.address: user.password_hash for user in config.users}
    outcomes = {user: f"no password in {login.source}" for user in chosen if user not in login.passwords}
    for user in having:
        if users.matches(current[user], login.passwords[user]):
            outcomes[user] = UNCHANGED
        else:
            users.set_password(config.source, user, users.hash_password(login.passwords[user]))
            outcomes[user] = IMPORTED
    return {user: outcomes[user] for user in chosen}


def _refusal(config: Config, user: str, login: Credentials) -> str | None:
    try:
        source_session(config, user, login).logout()
    except MigrationError as error:
        return str(error)
    return None


# The cut-over: where each user's mail and logins go.

def moving(config: Config) -> list[str]:
    """The users who move, in the order the waves take them."""
    return config.migration.users or [user.address for user in config.users]


def wave_users(config: Config, number: int) -> list[str]:
    """The users wave ``number`` (from 1) adds to the earlier ones."""
    earlier = up_to_wave(config, number - 1) if number > 1 else []
    return [user for user in up_to_wave(config, number) if user not in earlier]


def up_to_wave(config: Config, number: int) -> list[str]:
    """The users of waves 1 to ``number``, in the order the waves take them."""
    if not 1 <= number <= len(config.migration.waves):
        raise ConfigError(config.source, [f"--wave {number}: {config.source} has waves 1 to"
                                          f" {len(config.migration.waves)} (migration.waves)"])
    users, taken = moving(config), []
    for wave in config.migration.waves[:number]:
        chosen = wave.users or users[:math.ceil(len(users) * wave.percent / 100)]
        taken += [user for user in chosen if user not in taken]
    return taken


def route_file(config: Config, path: str) -> tuple[ManagedFile, ...]:
    """During a migration, the routes file ``path`` of a component: the deploy makes it once
    (everyone on the old server); ``mailstack migrate cutover`` changes it from then on."""
    return (ManagedFile(path, create_only=True),) if config.migration else ()


def routes(config: Config, states: dict[str, str]) -> tuple[str, str]:
    """Postfix's transport and Dovecot's proxy passdb for ``states`` (each moving user: OLD, HELD
    or MOVED; a moved user is in neither file, so the cluster serves them)."""
    where = source(config)
    relay = config.migration.relay or where.host
    transport, proxied = [], []
    for user in moving(config):
        state = states.get(user, OLD)
        if state == OLD:
            transport.append(f"{user} smtp:[{_address_of(config, relay)}]:25")
            proxied.append(f"{user}{NO_PASSWORD}proxy=y host={where.host} hostip={_address_of(config, where.host)}"
                           f" port={where.port} ssl=yes")
        elif state == HELD:  # deferred until the cut-over ends; logins refused meanwhile
            transport.append(f"{user} retry:4.2.0 mailbox moving to another server")
            proxied.append(f"{user}{NO_PASSWORD}nologin=y reason=mailbox-moving-try-again-in-a-minute")
    header = "# Written by mailstack migrate cutover (docs/migration.md); the deploy only makes it once.\n"
    return header + "".join(line + "\n" for line in transport), header + "".join(line + "\n" for line in proxied)


def states(config: Config) -> dict[str, str]:
    """Each moving user's state, from the recorded cut-overs and rollbacks."""
    moved = moved_with(config)
    return {user: MOVED if user in moved else OLD for user in moving(config)}


def moved_with(config: Config) -> dict[str, int]:
    """The wave each user who is cut over now moved with."""
    found = {}
    for entry in history(config):
        if entry["step"] == "cutover":
            found[entry["user"]] = entry["wave"]
        elif entry["step"] == "rollback":
            found.pop(entry["user"], None)
    return found


def push_routes(config: Config, wanted: dict[str, str], kicked: Iterable[str] = ()) -> None:
    """Write the routes on every mx host, reload Postfix, and end the sessions of ``kicked``, proxied or not
    (Dovecot reads the proxy passdb anew whenever it changes)."""
    kick = "".join(f"; doveadm proxy kick {shlex.quote(user)} >/dev/null 2>&1; doveadm kick {shlex.quote(user)}"
                   " >/dev/null 2>&1" for user in kicked)
    for host in config.hosts_in("mx"):
        for path, text in zip((TRANSPORT, PROXIED), routes(config, wanted)):
            result = ssh.run(config, host, f"mkdir -p {ROUTES} && cat > {path}.new && mv {path}.new {path}",
                             input=text.encode(), timeout=60)
            if result.returncode != 0:
                raise MigrationError(f"{host}: could not write {path}: {result.stderr.decode().strip()[-300:]}")
        ssh.run(config, host, f"postfix reload >/dev/null 2>&1{kick}; true", timeout=60)


def wait_for_deliveries(config: Config, users: list[str], limit: float = 120) -> None:
    """Until no mx host is still handing mail for ``users`` to the old server."""
    deadline = time.monotonic() + limit
    for host in config.hosts_in("mx"):
        while True:
            listed = ssh.run(config, host, "postqueue -j", timeout=60).stdout.decode().splitlines()
            busy = [item for item in map(json.loads, listed) if item["queue_name"] == "active"
                    and any(rcpt["address"] in users for rcpt in item["recipients"])]
            if not busy:
                break
            if time.monotonic() > deadline:
                raise MigrationError(f"{host}: mail for {', '.join(users)} is still being delivered after {limit} s")
            time.sleep(0.5)


def release(config: Config) -> None:
    """Deliver the mail held meanwhile, now by the new routes."""
    for host in config.hosts_in("mx"):
        ssh.run(config, host, "postqueue -f", timeout=60)


@dataclass
class CutOver:
    user: str
    synced: Synced
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.synced.error and not self.differences

    @property
    def route(self) -> str:
        return MOVED if self.ok else OLD

    @property
    def why(self) -> str:
        return self.synced.error or f"{len(self.differences)} differences"


def settled_copy(config: Config, host: str, user: str, login: Credentials, passes: int = 5) -> Synced:
    """The last delta of a held user, copied again until a pass adds nothing: mail the cluster
    relayed before the hold may still sit in the old server's own queue."""
    total = Synced(user)
    for _ in range(passes):
        synced = sync_user(config, host, user, login)
        total = Synced(user, total.added + synced.added, total.removed + synced.removed,
                       total.seconds + synced.seconds, synced.error)
        if synced.error or not synced.added:
            return total
    total.error = f"the old server was still taking in mail for {user} after {passes} copies"
    return total


def switch_wave(config: Config, current: dict[str, str], users: list[str], what: str,
                work: Callable[[str, str], "CutOver | RolledBack"], report: Callable[[str], None]) -> list:
    """Hold ``users``' mail and logins, run ``work(host, user)`` for each on the active mx host,
    then route each as its outcome says (as before, if interrupted) and deliver the mail held
    meanwhile. With a backup host, the cluster's mailboxes are backed up first."""
    if config.hosts_in("backup"):
        _, state = backup.take(config, out=sys.stderr)
        report(f"backed up before {what} ({state}): mailstack backup restore --at"
               f" {state.removeprefix(backup.STATE_ARCHIVES)} brings the cluster's mailboxes back as they were")
    report(f"holding the mail and logins of {len(users)} users")
    push_routes(config, {**current, **dict.fromkeys(users, HELD)}, kicked=users)
    wait_for_deliveries(config, users)
    results = []
    try:
        host = active_mx(config)
        with ThreadPoolExecutor(config.migration.parallel) as pool:
            results = list(pool.map(lambda user: work(host, user), users))
    finally:  # interrupted, every user is routed as before the wave
        push_routes(config, {**current, **{one.user: one.route for one in results}})
        release(config)
    return results


def cutover(config: Config, number: int, login: Credentials,
            report: Callable[[str], None] = lambda line: None) -> list[CutOver]:
    """Cut over wave ``number``, and the users of earlier waves still on the old server: hold
    their mail and logins, copy the last changes, verify, then serve them from the cluster and
    deliver what was held. A user whose copy fails or differs goes back to the old server as
    before, and is named."""
    current = states(config)
    users = [user for user in up_to_wave(config, number) if current[user] != MOVED]
    if not users:
        return []
    if misfits := [one.user for one in plan(config, users, login) if not one.fits]:
        raise MigrationError(f"over their quota on the cluster: {', '.join(misfits)}; raise it first")

    def last_copy(host: str, user: str) -> CutOver:
        synced = settled_copy(config, host, user, login)
        synced.error = synced.error or rename_special_folders(config, host, user, login)
        differences = [] if synced.error else verify_user(config, user, login, cut_over=True).differences
        done = CutOver(user, synced, differences)
        report(f"{user}: " + ("cut over" if done.ok else f"stays on the old server: {done.why}"))
        return done

    return switch_wave(config, current, users, f"wave {number}", last_copy, report)


# The rollback: a wave's users back onto the old server, with what reached them on the cluster.

@dataclass
class RolledBack:
    user: str
    copied: int = 0
    flagged: int = 0
    lacking: int = 0
    """Messages of the cluster the old server still lacks afterwards: the rollback failed."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.error and not self.lacking

    @property
    def route(self) -> str:
        return OLD if self.ok else MOVED

    @property
    def why(self) -> str:
        return self.error or f"the old server still lacks {self.lacking} messages"


def lacking(old: dict[str, Folder], new: dict[str, Folder]) -> dict[str, list[int]]:
    """Per folder, the UIDs of ``new``'s messages that ``old`` does not hold in that folder
    (the same bytes and INTERNALDATE, as often)."""
    found = {}
    for name, folder in new.items():
        there = Counter((one.sha256, one.internaldate) for one in (old[name].messages.values() if name in old else ()))
        if uids := [uid for uid, one in folder.messages.items() if not _take(there, (one.sha256, one.internaldate))]:
            found[name] = uids
    return found


def reflagged(old: dict[str, Folder], new: dict[str, Folder]) -> dict[tuple[str, str], list[int]]:
    """Per folder and flags, the UIDs of ``old``'s messages whose copy in ``new`` carries
    those other flags (a message held more than once is paired in UID order)."""
    found: dict[tuple[str, str], list[int]] = {}
    for name in old.keys() & new.keys():
        copies: dict[tuple, list[Message]] = {}
        for one in new[name].messages.values():
            copies.setdefault((one.sha256, one.internaldate), []).append(one)
        for uid, one in old[name].messages.items():
            if (paired := copies.get((one.sha256, one.internaldate))) and (flags := paired.pop(0).flags) != one.flags:
                found.setdefault((name, flags), []).append(uid)
    return found


OLD_SERVER = "mailstack-old-server/"
"""Where a rollback's doveadm sees the user's mailbox on the old server: a namespace of Dovecot's
imapc storage beside their own, so that Dovecot copies between the two."""
_OLD_SERVER_NAMESPACE = f"namespace old_server {{\n  prefix = {OLD_SERVER}\n  separator = /\n  location = imapc:\n}}\n"
_COPY_BACK = "set -eu\n" + _IMAPC_CONF + """doveadm() {{ command doveadm -c "$dir/imapc.conf" -o mail_plugins= "$@"; }}
{commands}
"""
_WILDCARDS = re.compile(r"[*?%]")


def _uids(uids: list[int]) -> str:
    return ",".join(map(str, uids))


def copy_back(config: Config, host: str, user: str, login: Credentials) -> RolledBack:
    """Put on the old server what ``user`` holds only on the cluster, and the flags they set
    there since: ``doveadm copy`` and ``doveadm flags`` between their mailbox and the old
    server's, seen through Dovecot's imapc storage. Special folders go back under the old
    server's names. Then read both sides again."""
    old, new = both_sides(config, user, login)
    as_old = cluster_as_old_server(old, new)
    missing, flags = lacking(old, as_old), reflagged(old, as_old)
    searched = {as_old[name].name for name in missing} | {name for name, _ in flags}
    if wild := [readable(name) for name in searched if _WILDCARDS.search(name)]:
        return RolledBack(user, error=f"doveadm cannot name folders with *, ? or %: {', '.join(wild)}; copy them"
                                      " by hand")
    as_user = f"-u {shlex.quote(user)}"
    commands = [f"doveadm mailbox create {as_user} {shlex.quote(OLD_SERVER + readable(name))}"
                for name in missing if name not in old]
    commands += [f"doveadm copy {as_user} {shlex.quote(OLD_SERVER + readable(name))} mailbox"
                 f" {shlex.quote(readable(as_old[name].name))} uid {_uids(uids)}" for name, uids in missing.items()]
    commands += [f"doveadm flags replace {as_user} {shlex.quote(wanted)} mailbox"
                 f" {shlex.quote(OLD_SERVER + readable(name))} uid {_uids(uids)}"
                 for (name, wanted), uids in flags.items()]
    done = RolledBack(user, sum(map(len, missing.values())), sum(map(len, flags.values())))
    if commands:
        result = ssh.run(config, host, _COPY_BACK.format(commands="\n".join(commands)),
                         input=(imapc_settings(config, user, login) + _OLD_SERVER_NAMESPACE).encode(), timeout=6 * 3600)
        if result.returncode != 0:
            done.error = f"doveadm failed (exit {result.returncode}): {_complaints(result.stderr)[-400:]}"
            return done
    old, new = both_sides(config, user, login)
    done.lacking = sum(map(len, lacking(old, cluster_as_old_server(old, new)).values()))
    return done


def cluster_as_old_server(old: dict[str, Folder], new: dict[str, Folder]) -> dict[str, Folder]:
    """The cluster's folders (``new``) by the old server's names: each special folder that the
    cut-over renamed gets its old name back, unless the user made a folder of that name on the
    cluster since. Each keeps its own name on the cluster as ``name``."""
    renames = special_renames({name: folder.use for name, folder in old.items()})
    back = {cluster_name: name for name, cluster_name in renames.items() if name not in new}
    return {renamed(name, back): folder for name, folder in new.items()}


def rollback(config: Config, number: int, login: Credentials,
             report: Callable[[str], None] = lambda line: None) -> list[RolledBack]:
    """Send the users who moved with wave ``number`` back to the old server: hold their mail and
    logins, copy there what reached them on the cluster since the cut-over (and the flags they
    changed), check that the old server holds every message the cluster does, set the cluster's
    copy aside, then relay and proxy them to the old server again. A user whose copy fails stays
    on the cluster, and is named."""
    wave_users(config, number)  # a wave the configuration does not have is refused
    waves = moved_with(config)
    users = [user for user in moving(config) if waves.get(user) == number]
    if not users:
        return []
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def back(host: str, user: str) -> RolledBack:
        done = copy_back(config, host, user, login)
        if done.ok:
            if problem := set_aside(config, user, f"Maildir.rolled-back-{stamp}"):
                done.error = f"could not set the cluster's copy aside: {problem}"
        report(f"{user}: " + (f"back on the old server ({done.copied} messages copied, {done.flagged} reflagged)"
                              if done.ok else f"stays on the cluster: {done.why}"))
        return done

    return switch_wave(config, states(config), users, f"the rollback of wave {number}", back, report)


_MAILDIR = """set -eu
home=$(doveadm user -f home {user})
[ -d "$home/Maildir" ] || exit 0
"""
_SET_ASIDE = _MAILDIR + """doveadm replicator remove {user} 2>/dev/null || true
mv "$home/Maildir" "$home/"{aside}
"""
_REMOVE_IF_EMPTY = _MAILDIR + """[ -z "$(find "$home/Maildir" -type f -path '*/cur/*' -print -quit)" ] || exit 0
[ -z "$(find "$home/Maildir" -type f -path '*/new/*' -print -quit)" ] || exit 0
doveadm replicator remove {user} 2>/dev/null || true
rm -rf "$home/Maildir"
"""


def set_aside(config: Config, user: str, aside: str) -> str | None:
    """Move ``user``'s mailbox on every mx host to ``aside`` in their home, or say why not. The
    next sync starts from nothing: dsync cannot make a mailbox that the user changed equal to
    the old server's again (its INBOX would have to be made anew)."""
    return _on_every_mx(config, _SET_ASIDE.format(user=shlex.quote(user), aside=shlex.quote(aside)))


def remove_if_empty(config: Config, user: str) -> str | None:
    """Remove ``user``'s mailbox from every mx host where it holds no message, or say why not:
    a login (``verify`` before the first sync, or after a rollback) made it, and dsync cannot
    replace the INBOX it made."""
    return _on_every_mx(config, _REMOVE_IF_EMPTY.format(user=shlex.quote(user)))


def _on_every_mx(config: Config, script: str) -> str | None:
    for host in config.hosts_in("mx"):
        result = ssh.run(config, host, script, timeout=60)
        if result.returncode != 0:
            return f"{host}: {result.stderr.decode(errors='replace').strip()[-300:]}"
    return None
