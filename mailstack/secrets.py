"""The secrets mailstack makes itself, in one explicit step (``mailstack secrets``).

Rendering only reads them. ``make`` runs before a deploy (its preflight), a DNS command,
``mailstack lab up`` and the lab tests; each secret is made once and then kept, because DNS
records (DKIM, TLSA) and trust (a CA) depend on it. Secrets the operator supplies (the
production TSIG key, certificates in mode ``files``) are never made here.
"""

from pathlib import Path

from . import backup, certificates, dkim, keys, migration
from .config import Config

SHARED_PASSWORDS = {"doveadm.pass": 32}
"""Passwords the hosts of a cluster share, by file in the secrets folder, with their length."""
COROSYNC_KEY = "corosync.key"
"""The mx pair's Corosync key, where its mailboxes are on DRBD (deploys/pacemaker.py)."""
HIDDEN = "<secret>"
SHORTEST = 8
"""Lines of secret files shorter than this (a PEM file's last one) are not secret enough to hide."""


def zone_keys(config: Config) -> Path:
    """The folder of the lab zone's DNSSEC key files (BIND's names and formats)."""
    return config.secrets_dir / "dnssec"


def zone_key_files(config: Config) -> list[Path]:
    """The lab zone's signing key files, once made."""
    return sorted(zone_keys(config).glob(f"K{config.domains[0].name}.+*"))


def make(config: Config) -> Path:
    """Make every missing secret of ``config``; returns the secrets folder."""
    dkim.make_keys(config)
    for name, length in SHARED_PASSWORDS.items():
        keys.random_secret(config.secrets_dir / name, length)
    if config.mailbox_replication == "drbd":  # Corosync wants 1,024 bits at least
        keys.random_secret(config.secrets_dir / COROSYNC_KEY, 192)
        certificates.make_quorum(config)
    if config.hosts_in("backup"):
        keys.random_secret(config.secrets_dir / backup.PASSPHRASE, 48)
        keys.ssh_keypair(config.secrets_dir / backup.SSH_KEY)
    if config.migration:
        keys.random_secret(config.secrets_dir / migration.MASTER_PASSWORD, 32)
    if config.tls.mode == "internal":
        certificates.make_internal(config)
    if config.lab:
        _make_lab(config)
    return config.secrets_dir


def _make_lab(config: Config) -> None:
    """The lab's SSH key, CA (which every lab host trusts), TSIG key, the certificates of pebble
    and of the old IMAP server, that server's admin login and the key that signs the lab's zone."""
    keys.ssh_keypair(config.path(config.ssh.key))
    ca = certificates.cluster_ca(config)
    keys.certificate_authority(*ca, name=f"mailstack {config.cluster.name} CA")
    if config.dns:
        keys.tsig_secret(config.path(config.dns.tsig_secret_file))
    domain = config.domains[0].name
    if config.hosts_in("ns"):
        keys.zone_signing_key(zone_keys(config), domain)
    if config.migration and config.hosts_in("legacy"):
        migration.make_lab_credentials(config)
    for name in config.hosts_in("ns") + config.hosts_in("legacy"):  # pebble's HTTPS, the old server's IMAPS
        address = str(config.hosts[name].address)
        cert, key = config.secrets_dir / f"{name}.pem", config.secrets_dir / f"{name}.key"
        keys.server_certificate(cert, key, ca, [f"{name}.{domain}", name, address])


def lines(config: Config) -> set[str]:
    """Every line of every file in the secrets folder that is long enough to hide."""
    found = set()
    for path in sorted(config.secrets_dir.rglob("*")):
        if path.is_file():
            found |= {line.strip() for line in path.read_text(errors="replace").splitlines()}
    return {line for line in found if len(line) >= SHORTEST}


def redact(config: Config, text: str) -> str:
    """``text`` with every line of every file in the secrets folder replaced by ``<secret>``:
    for what a tool says about a file that holds a secret (doveconf quoting a bad line)."""
    for value in sorted(lines(config), key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


# What a host's checker says, with each line of the file named first replaced by HIDDEN (awk's
# index() matches literally, whatever the line holds).
REDACT_AWK = (
    'FILENAME == ARGV[1] { hidden[++count] = $0; next }'
    ' { for (i = 1; i <= count; i++) while ((at = index($0, hidden[i])) > 0)'
    f' $0 = substr($0, 1, at - 1) "{HIDDEN}" substr($0, at + length(hidden[i])); print }}'
)
