"""The cluster configuration: one typed model, the single source of truth.

Every field states its type, default, an example and what it affects. Deploys and
templates read only this model, and ``docs/configuration.md`` is generated from it
(``make docs``), so the reference cannot drift from the code.
"""

import typing
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .types import (
    CONTROL,
    AliasSource,
    DevicePath,
    DnsName,
    DomainName,
    EmailAddress,
    FilePath,
    FstabOption,
    HostAddress,
    HostName,
    HttpsUrl,
    HttpUrl,
    ImapsUrl,
    IpAddress,
    IpInterface,
    IpNetwork,
    Line,
    MountPoint,
    PasswordHash,
    PostfixParameter,
    PostfixValue,
    ServerName,
    Size,
    TimeZone,
    UserName,
    ZfsName,
    ZfsProperty,
)

GROUPS = ("lb", "mx", "storage", "mon", "backup", "quorum", "ns", "outside", "legacy")
LAB_GROUPS = {"ns", "outside", "legacy"}
"""The lab's own services (its DNS and ACME CA, another provider, the old IMAP server), not a cluster's."""
RELEASES = {"bookworm": "Debian 12", "trixie": "Debian 13"}
Release = Literal[tuple(RELEASES)]
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def setting(default=..., *, example, doc: str, **constraints):
    """A documented field; ``default=...`` makes it required."""
    return Field(default, description=doc, examples=[example], **constraints)


class Section(BaseModel):
    """A part of the configuration: unknown keys are errors, values are validated and frozen."""

    # strict: a number is a number and a boolean a boolean, as written; nothing is coerced.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value, info: ValidationInfo):
        """No text anywhere in the file holds a line break or another control character: each
        value lands in some line-oriented file, where one would start a new line or field.
        (A field holding sections leaves that to the sections, which name the key exactly.)"""
        if not _holds_sections(cls.model_fields[info.field_name].annotation):
            if any(CONTROL.search(text) for text in _texts(value)):
                raise ValueError("must not contain line breaks or other control characters")
        return value


def _holds_sections(annotation) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_sections(arg) for arg in typing.get_args(annotation))


def _texts(value) -> list[str]:
    """Every string in a raw value: itself, or the keys and items of its lists and mappings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in _texts(key) + _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


class Watchdog(Section):
    module: str = setting(
        "softdog", example="iTCO_wdt",
        doc="Kernel module of the mx hosts' hardware watchdog: iTCO_wdt on Intel boards, ipmi_watchdog with IPMI,"
        " i6300esb in a QEMU guest; softdog, the kernel's own, where there is none (it resets a host whose SBD"
        " stops feeding it, not one whose kernel hangs).",
        pattern=r"^[A-Za-z0-9_]{1,64}$",
    )
    seconds: int = setting(
        5, example=10,
        doc="How long a host may go without feeding it before it is reset. Pacemaker takes the mail over from a"
        " host it lost after twice this, by when that host, if it still ran, has reset itself. Lengthen it only"
        " for hosts too slow to feed it that often (guests emulated without KVM).",
        ge=3, le=60,
    )


class Cluster(Section):
    name: HostName = setting(
        example="example-prod", doc="Short name of this cluster; names the VRRP instance and secrets folder."
    )
    mail_hostname: DomainName = setting(
        example="mail.example.com",
        doc="Public name of the cluster: MX target, SMTP greeting and the name on the certificate.",
    )
    virtual_ip: HostAddress = setting(
        example="192.0.2.10", doc="Address Keepalived moves between the lb hosts; MX and clients reach this."
    )
    network: IpNetwork | None = setting(
        None, example="192.0.2.0/24",
        doc="The network the lb hosts share; given, the virtual IP and every lb host must be inside it (the"
        " virtual IP moves by ARP or neighbour discovery, within one network).",
    )
    postmaster: EmailAddress | None = setting(
        None,
        example="postmaster@example.com",
        doc="Receives RAID/ZFS alerts and bounces; defaults to postmaster@ the first mail domain.",
    )
    timezone: TimeZone = setting("UTC", example="Europe/Berlin", doc="Time zone of every host (log timestamps).")
    ntp_servers: list[ServerName] = setting(
        ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
        example=["ntp1.example.net"],
        doc="NTP servers for systemd-timesyncd on hosts with their own clock (not containers).",
    )
    vrrp_router_id: int = setting(
        51, example=77, doc="VRRP router id of the virtual IP; unique among VRRP users of its network.", ge=1, le=255
    )
    health_check_interval: int = setting(
        1, example=5,
        doc="Seconds between HAProxy's checks of each mx service, and between Keepalived's checks of HAProxy;"
        " the failover times in docs/ha.md are measured with 1. Lengthen it only for hosts too slow to check"
        " that often (staging VMs emulated without KVM): a failover then takes correspondingly longer.",
        ge=1, le=30,
    )
    watchdog: Watchdog = setting(
        {}, example={"module": "iTCO_wdt"},
        doc="An mx pair on DRBD: the watchdog each mx host feeds through SBD, which resets a host that lost"
        " quorum or cannot stop the mail (docs/ha.md).",
    )
    apt_proxy: HttpUrl | None = setting(
        None, example="http://10.0.0.1:3142", doc="HTTP proxy for apt on every host (the lab runs one on its bridge)."
    )
    release: Release = setting(
        "bookworm", example="trixie",
        doc="Debian release of every host (a host's own `release` overrides it): bookworm (Debian 12, LTS until"
        " June 2028) or trixie (Debian 13, for the groups docs/releases.md lists). Files are rendered for it and"
        " checked by its own tools.",
    )


class Storage(Section):
    """Exactly one of ``mdraid`` or ``zfs`` describes how /var/vmail is stored on this host."""

    mdraid: "MdRaid | None" = setting(None, example={"devices": ["/dev/vdb", "/dev/vdc"]}, doc="Software RAID.")
    zfs: "Zfs | None" = setting(None, example={"vdevs": [{"devices": ["/dev/vdb", "/dev/vdc"]}]}, doc="A ZFS pool.")

    @model_validator(mode="after")
    def _one_layout(self):
        if (self.mdraid is None) == (self.zfs is None):
            raise ValueError("give exactly one of 'mdraid' or 'zfs'")
        return self


class MdRaid(Section):
    name: HostName = setting("vmail", example="vmail", doc="Array name: the array assembles as /dev/md/<name>.")
    level: Literal[1, 6, 10] = setting(10, example=10, doc="RAID level; 10 needs an even number of devices.")
    devices: list[DevicePath] = setting(
        example=["/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde"], doc="Member disks.", min_length=2
    )
    filesystem: Literal["ext4", "xfs"] = setting("ext4", example="xfs", doc="Filesystem made on the array.")
    mount_point: MountPoint = setting("/var/vmail", example="/var/vmail", doc="Where the filesystem is mounted.")
    mount_options: list[FstabOption] = setting(["noatime"], example=["noatime", "nodev"], doc="Options in fstab.")
    wipe: list[DevicePath] = setting(
        [],
        example=["/dev/vdb"],
        doc="Members whose existing data may be destroyed; any other member that holds data is refused.",
    )


class Vdev(Section):
    type: Literal["mirror", "raidz", "raidz2", "raidz3"] = setting("mirror", example="raidz2", doc="Redundancy.")
    devices: list[DevicePath] = setting(example=["/dev/vdb", "/dev/vdc"], doc="Disks of this vdev.", min_length=2)


class Dataset(Section):
    name: ZfsName = setting(example="vmail", doc="Dataset name below the pool.")
    mount_point: MountPoint = setting(example="/var/vmail", doc="Where the dataset is mounted.")
    quota: Size | None = setting(
        None, example="200G", doc="ZFS quota of the dataset; none by default (leave it out rather than 0).", ge=1
    )
    snapshots: bool = setting(
        True,
        example=False,
        doc="Snapshots by Debian's zfs-auto-snapshot, which keeps 4 of every 15 minutes, 24 hourly, 31 daily,"
        " 8 weekly and 12 monthly; they count against the quota.",
    )


class Zfs(Section):
    pool: HostName = setting("tank", example="tank", doc="Pool name.")
    vdevs: list[Vdev] = setting(
        example=[{"devices": ["/dev/vdb", "/dev/vdc"]}, {"devices": ["/dev/vdd", "/dev/vde"]}],
        doc="Top-level vdevs; data is striped across them.",
        min_length=1,
    )
    ashift: int = setting(12, example=12, doc="log2 of the sector size the pool assumes (12 = 4 KiB).", ge=9, le=16)
    properties: dict[ZfsProperty, Line] = setting(
        {"compression": "lz4", "atime": "off"}, example={"compression": "zstd"}, doc="Pool root properties."
    )
    datasets: list[Dataset] = setting(
        [{"name": "vmail", "mount_point": "/var/vmail"}],
        example=[{"name": "vmail", "mount_point": "/var/vmail", "quota": "200G"}],
        doc="Datasets created in the pool.",
    )
    scrub: Literal["weekly", "monthly"] = setting(
        "monthly", example="weekly", doc="How often the pool is scrubbed (ZFS's own systemd timer)."
    )
    wipe: list[DevicePath] = setting(
        [], example=["/dev/vdb"], doc="Disks whose existing data may be destroyed; others holding data are refused."
    )


class Host(Section):
    address: HostAddress = setting(example="192.0.2.11", doc="Address the deploy reaches the host on over SSH.")
    groups: list[Literal[GROUPS]] = setting(
        example=["lb"],
        doc="Roles: lb (HAProxy, Keepalived), mx (mail), storage, mon (Prometheus, Alertmanager), backup (the"
        " BorgBackup repository of the mx hosts), quorum (corosync-qnetd, the third vote of an mx pair on DRBD);"
        " in the lab"
        " ns (DNS, ACME), outside (another provider's mail server) and legacy (an old IMAP server to migrate from).",
        min_length=1,
    )
    interface: str = setting(
        "eth0", example="ens18", doc="Network interface holding the address; lb hosts put the virtual IP on it.",
        pattern=r"^[A-Za-z0-9_.-]{1,15}$",
    )
    vrrp_priority: int | None = setting(
        None, example=150, doc="Keepalived priority on lb hosts; the highest holds the virtual IP.", ge=1, le=254
    )
    storage: Storage | None = setting(
        None,
        example={"mdraid": {"devices": ["/dev/vdb", "/dev/vdc"]}},
        doc="How /var/vmail is stored; required on, and only on, hosts in the storage group.",
    )
    release: Release | None = setting(
        None, example="trixie", doc="This host's Debian release where it differs from cluster.release (an upgrade)."
    )


class Ssh(Section):
    user: UserName = setting("root", example="deploy", doc="User the deploy logs in as.")
    port: int = setting(22, example=2222, doc="SSH port of every host.", ge=1, le=65535)
    key: FilePath | None = setting(
        None, example="~/.ssh/mail_ed25519", doc="Private key file, relative to this file; default: SSH's own choice."
    )
    known_hosts: FilePath | None = setting(
        None, example="known_hosts", doc="known_hosts file, relative to this file; default: the user's own."
    )


class Dmarc(Section):
    policy: Literal["none", "quarantine", "reject"] = setting(
        "quarantine", example="reject", doc="What receivers do with mail that fails DMARC (p=)."
    )
    report_address: EmailAddress | None = setting(
        None, example="dmarc@example.com", doc="Where aggregate reports go (rua=); none: no reports."
    )


class Domain(Section):
    name: DomainName = setting(example="example.com", doc="A mail domain the cluster receives and sends for.")
    dkim_selector: HostName = setting("mail", example="mail2026", doc="DKIM selector: <selector>._domainkey.<name>.")
    dkim_key_bits: Literal[2048, 3072, 4096] = setting(2048, example=4096, doc="Size of the DKIM RSA key.")
    spf_all: Literal["-all", "~all"] = setting("-all", example="~all", doc="SPF verdict for other senders.")
    dmarc: Dmarc = setting(Dmarc(), example={"policy": "reject"}, doc="DMARC record of the domain.")
    mta_sts: Literal["enforce", "testing", "none"] = setting(
        "enforce", example="testing", doc="MTA-STS policy mode: senders must (enforce) or should (testing) use TLS."
    )
    tls_report_address: EmailAddress | None = setting(
        None, example="tlsrpt@example.com", doc="Where TLS reports go (_smtp._tls, RFC 8460); default: the postmaster."
    )


class User(Section):
    address: EmailAddress = setting(example="alice@example.com", doc="Login name and mailbox address.")
    password_hash: PasswordHash = setting(
        example="{SHA512-CRYPT}$6$...", doc="Password hash only, never the password; `mailstack user add` writes it."
    )
    quota: Size | None = setting(
        None, example="5G", doc="Mailbox quota; default: mail.default_quota. 0 is refused: it would mean none.", ge=1
    )


class Alias(Section):
    address: AliasSource = setting(
        example="sales@example.com", doc="Address that forwards; @example.com is a catch-all for the domain."
    )
    to: list[EmailAddress] = setting(
        example=["alice@example.com"], doc="Where mail for the address goes.", min_length=1
    )


class Mail(Section):
    message_size_limit: Size = setting(
        "50M", example="25M", doc="Largest message accepted (Postfix); 0 is refused: Postfix reads it as no limit.",
        ge=1024,
    )
    default_quota: Size = setting(
        "2G", example="10G", doc="Quota of users without their own; 0 is refused: Dovecot reads it as no quota.", ge=1
    )
    postfix_extra: dict[PostfixParameter, PostfixValue] = setting(
        {},
        example={"smtpd_client_connection_rate_limit": "30"},
        doc="Further main.cf settings, added last; `postfix check` and postconf vet them before they go live.",
    )
    send_rate_limit: int = setting(
        200, example=50, doc="Messages one authenticated user may send per hour (Rspamd), bursts included.", ge=1
    )
    imap_sessions: int = setting(
        50_000,
        example=20_000,
        doc="Open IMAP sessions the cluster is sized for, most of them idle in IDLE (a client keeps one per"
        " watched folder): HAProxy's connection limit on the lb hosts, Dovecot's login processes and the"
        " kernel's inotify limits on the mx hosts follow from it (docs/capacity.md).",
        ge=100,
        le=100_000,
    )


class Dns(Section):
    server: IpAddress = setting(example="192.0.2.53", doc="Authoritative server that takes RFC 2136 updates.")
    port: int = setting(53, example=53, doc="Its DNS port.", ge=1, le=65535)
    tsig_key_name: DnsName = setting(example="mailstack-key", doc="Name of the TSIG key allowed to update.")
    tsig_algorithm: Literal["hmac-sha256", "hmac-sha512"] = setting(
        "hmac-sha256", example="hmac-sha512", doc="TSIG algorithm."
    )
    resolver: IpAddress | None = setting(
        None, example="192.0.2.54",
        doc="A validating resolver that `mailstack dns check` asks whether the zone's DNSSEC signatures validate"
        " (without it: this machine's first resolver).",
    )
    tsig_secret_file: FilePath = setting(
        example="secrets/tsig.key", doc="File holding the base64 TSIG secret, relative to this file; keep it 0600."
    )


class Acme(Section):
    directory: HttpsUrl = setting(LETS_ENCRYPT, example=LETS_ENCRYPT, doc="ACME directory URL of the CA.")
    email: EmailAddress = setting(example="hostmaster@example.com", doc="Contact the CA writes to about expiry.")
    challenge: Literal["dns-rfc2136", "http-01"] = setting(
        "dns-rfc2136", example="http-01", doc="dns-rfc2136 needs the top-level dns section; http-01 needs port 80."
    )
    propagation_seconds: int = setting(
        60, example=10, doc="dns-rfc2136: seconds certbot waits for the challenge record to reach every server.", ge=0
    )
    caa_identity: DomainName = setting(
        "letsencrypt.org", example="pki.goog", doc="The CA's CAA identity: the only CA the CAA records allow."
    )
    roots: FilePath | None = setting(
        None,
        example="secrets/staging-roots.pem",
        doc="PEM file of the CA's roots, relative to this file, where the system does not trust them"
        " (pebble, Let's Encrypt's staging CA): `mailstack dns check` trusts them when it fetches the MTA-STS policy.",
    )


class TlsFiles(Section):
    certificate: FilePath = setting(example="tls/fullchain.pem", doc="Certificate chain, relative to this file.")
    key: FilePath = setting(example="tls/privkey.pem", doc="Private key, relative to this file.")


class Tls(Section):
    mode: Literal["acme", "internal", "files"] = setting(
        "internal", example="acme", doc="acme: certbot; internal: a mailstack CA; files: your own files."
    )
    acme: Acme | None = setting(None, example={"email": "hostmaster@example.com"}, doc="Settings of mode acme.")
    files: TlsFiles | None = setting(
        None, example={"certificate": "fullchain.pem", "key": "privkey.pem"}, doc="Settings of mode files."
    )

    @model_validator(mode="after")
    def _mode_has_settings(self):
        if self.mode in ("acme", "files") and getattr(self, self.mode) is None:
            raise ValueError(f"mode '{self.mode}' needs its '{self.mode}' section")
        return self


class RateLimit(Section):
    new_per_minute: int = setting(example=10, doc="New connections per minute from one address.", ge=1)
    concurrent: int = setting(example=10, doc="Open connections from one address at once.", ge=1)


class RateLimits(Section):
    smtp: RateLimit = setting(
        RateLimit(new_per_minute=30, concurrent=20),
        example={"new_per_minute": 60, "concurrent": 30},
        doc="Port 25: other mail servers, which reuse few connections.",
    )
    submission: RateLimit = setting(
        RateLimit(new_per_minute=10, concurrent=10),
        example={"new_per_minute": 20, "concurrent": 10},
        doc="Ports 465 and 587: mail clients of users, a target of password guessing.",
    )
    imap: RateLimit = setting(
        RateLimit(new_per_minute=20, concurrent=20),
        example={"new_per_minute": 30, "concurrent": 40},
        doc="Ports 143 and 993: mail clients open several sessions each (IDLE per folder).",
    )
    sieve: RateLimit = setting(
        RateLimit(new_per_minute=10, concurrent=5),
        example={"new_per_minute": 10, "concurrent": 5},
        doc="Port 4190: ManageSieve, used rarely.",
    )
    https: RateLimit = setting(
        RateLimit(new_per_minute=30, concurrent=10),
        example={"new_per_minute": 60, "concurrent": 10},
        doc="Port 443: the MTA-STS policy, which sending servers fetch and then cache for days.",
    )


class Fail2ban(Section):
    bantime: int = setting(3600, example=600, doc="Seconds an address stays banned.", ge=1)
    findtime: int = setting(600, example=600, doc="Window in seconds in which failures are counted.", ge=1)
    maxretry: int = setting(5, example=3, doc="Failures within findtime that ban an address.", ge=1)


class Firewall(Section):
    admin_networks: list[IpNetwork] = setting(
        [], example=["198.51.100.0/24"], doc="Networks allowed to SSH, besides the deploying machine."
    )
    allow_deployer: bool = setting(
        True,
        example=False,
        doc="Also allow SSH from the address the deploy comes from (as the host sees it), whatever admin_networks say.",
    )
    confirm_seconds: int = setting(
        30,
        example=60,
        doc="After new rules go live the deploying machine must open a new SSH connection within this time,"
        " or the previous rules are restored.",
        ge=5,
        le=600,
    )
    rate_limits: RateLimits = setting(
        RateLimits(),
        example={"imap": {"new_per_minute": 10, "concurrent": 10}},
        doc="Per-source limits on the public ports, by service; each one left out keeps its default.",
    )
    fail2ban: Fail2ban = setting(Fail2ban(), example={"maxretry": 3}, doc="Banning of failed logins.")


class Lab(Section):
    """The local lab (`mailstack lab`): hosts in the storage group become QEMU guests, which have
    a real kernel for RAID and ZFS; every other host is a booted systemd-nspawn container."""

    bridge: str = setting(
        "mslab0", example="mslab0", doc="Name of the lab's bridge on this machine.", pattern=r"^[a-z][a-z0-9]{1,14}$"
    )
    address: IpInterface = setting(
        "10.77.0.1/24",
        example="10.77.0.1/24",
        doc="Address of this machine on the bridge (also the apt proxy's); every lab host is in its subnet.",
    )
    vm_memory: Size = setting("1G", example="2G", doc="Memory of each QEMU guest.")
    vm_disks: int = setting(4, example=4, doc="Empty extra virtio disks of each QEMU guest.", ge=0, le=8)
    vm_disk_size: Size = setting("256M", example="1G", doc="Size of each extra disk (sparse).")
    passwords: dict[EmailAddress, Line] = setting(
        {},
        example={"alice@mailstack.test": "alice-lab-pw"},
        doc="Lab users' passwords in plain text, by address (their hashes are in users): `mailstack lab login`"
        " proves a round trip with them and the lab tests log in with them. Only ever for a lab.",
    )


class Monitoring(Section):
    retention_days: int = setting(
        15, example=90, doc="Days Prometheus on the mon hosts keeps metrics (under /var/lib/prometheus).", ge=1, le=3650
    )
    webhook: HttpUrl | None = setting(
        None, example="https://alerts.example.net/hook",
        doc="A second route for every alert, outside the cluster (Alertmanager's webhook JSON), for when the"
        " cluster's own mail is what failed.",
    )
    scrape_seconds: int = setting(
        15, example=30, doc="How often Prometheus scrapes and evaluates the rules (the service probes: every 30 s).",
        ge=1, le=300,
    )


class Retention(Section):
    """How many archives `borg prune` keeps, by period: the newest of each hour, day, week, month."""

    hourly: int = setting(24, example=48, doc="Hourly archives kept.", ge=0, le=100000)
    daily: int = setting(7, example=14, doc="Daily archives kept.", ge=0, le=100000)
    weekly: int = setting(4, example=8, doc="Weekly archives kept.", ge=0, le=100000)
    monthly: int = setting(6, example=12, doc="Monthly archives kept.", ge=0, le=100000)

    @model_validator(mode="after")
    def _keeps_something(self):
        if not any((self.hourly, self.daily, self.weekly, self.monthly)):
            raise ValueError("keep at least one archive of some period: all zero would prune every backup")
        return self


class Backup(Section):
    every_hours: int = setting(
        1, example=4, doc="Hours between backups of the mx hosts' mail and state (a systemd timer on each).",
        ge=1, le=24,
    )
    retention: Retention = setting(Retention(), example={"hourly": 48}, doc="Archives kept after each backup.")
    check_every_days: int = setting(
        7, example=14, doc="Days between `borg check` runs (on the days 1, 1+N, ... of each month), which read the"
        " whole repository back.", ge=1, le=28
    )


class Wave(Section):
    """One step of the cut-over: a share of the migrating users, or named ones."""

    percent: int | None = setting(
        None, example=10, doc="Up to this share of `migration.users` (in their order) is cut over by this wave.",
        ge=1, le=100,
    )
    users: list[EmailAddress] = setting([], example=["alice@example.com"], doc="Or exactly these users.")

    @model_validator(mode="after")
    def _one_way(self):
        if (self.percent is None) == (not self.users):
            raise ValueError("give a wave either percent or users, not both and not neither")
        return self


class Migration(Section):
    """Moving mail from an organisation's old IMAP server onto the cluster (`mailstack migrate`,
    docs/migration.md)."""

    source: ImapsUrl = setting(example="imaps://imap.old.example.com:993", doc="The old server, over IMAPS.")
    credentials: FilePath = setting(
        example="secrets/migration.yml",
        doc="A YAML file, mode 0600, with the logins on the old server: master_user and master_password (an"
        " admin who may act as every user, as Cyrus's proxyservers may), or passwords, by address.",
    )
    ca: FilePath | None = setting(
        None, example="old-ca.pem",
        doc="The CA that signed the old server's certificate, if not one the hosts already trust: the deploy"
        " installs it among the mx hosts' system roots.",
    )
    parallel: int = setting(4, example=8, doc="Mailboxes copied at once.", ge=1, le=64)
    users: list[EmailAddress] = setting(
        [], example=["alice@example.com", "bob@example.com"],
        doc="The users who move, in the order waves take them (default: every user). Until their wave is cut"
        " over, the cluster relays their mail to the old server, proxies their IMAP logins there and checks their"
        " password there (for submission too).",
    )
    relay: ServerName | None = setting(
        None, example="mx.old.example.com",
        doc="The old server's SMTP host, which takes the mail of users not yet cut over (default: the source's"
        " host), on port 25.",
    )
    waves: list[Wave] = setting(
        [Wave(percent=10), Wave(percent=50), Wave(percent=100)], example=[{"percent": 10}, {"users": ["a@b.c"]}],
        doc="The cut-over waves, in order (`mailstack migrate cutover --wave N`).", min_length=1,
    )


class Config(Section):
    cluster: Cluster = setting(example={"name": "prod"}, doc="Names and addresses of the whole cluster.")
    hosts: dict[HostName, Host] = setting(
        example={"lb1": {"address": "192.0.2.11", "groups": ["lb"], "vrrp_priority": 150}},
        doc="Every host, its address and roles; the pyinfra inventory is built from this.",
        min_length=1,
    )
    ssh: Ssh = setting(Ssh(), example={"user": "deploy"}, doc="How the deploy logs in.")
    domains: list[Domain] = setting(example=[{"name": "example.com"}], doc="Mail domains.", min_length=1)
    users: list[User] = setting([], example=[{"address": "alice@example.com"}], doc="Mailboxes.")
    aliases: list[Alias] = setting([], example=[{"address": "info@example.com"}], doc="Forwarding addresses.")
    mail: Mail = setting(Mail(), example={"message_size_limit": "25M"}, doc="Mail handling limits.")
    tls: Tls = setting(Tls(), example={"mode": "acme"}, doc="Where certificates come from.")
    dns: Dns | None = setting(None, example={"server": "192.0.2.53"}, doc="Dynamic DNS updates (RFC 2136).")
    firewall: Firewall = setting(Firewall(), example={"admin_networks": ["198.51.100.0/24"]}, doc="iptables.")
    monitoring: Monitoring = setting(
        Monitoring(), example={"retention_days": 90}, doc="Prometheus and Alertmanager on the mon hosts."
    )
    backup: Backup = setting(
        Backup(), example={"every_hours": 4},
        doc="Encrypted BorgBackup archives of the mx hosts on the backup hosts (docs/backups.md).",
    )
    migration: Migration | None = setting(
        None, example={"source": "imaps://imap.old.example.com"}, doc="Migration from an old IMAP server."
    )
    lab: Lab | None = setting(None, example={"bridge": "mslab0"}, doc="Only in the lab's inventory.")

    _source: Path = PrivateAttr(default=Path("."))

    @property
    def source(self) -> Path:
        """The YAML file this configuration was read from."""
        return self._source

    @property
    def secrets_dir(self) -> Path:
        """Keys mailstack generates or reads for this cluster: ``secrets/<cluster name>`` beside the YAML."""
        return self._source.parent / "secrets" / self.cluster.name

    def path(self, relative: str) -> Path:
        """A path from the configuration, resolved against the folder of its YAML file."""
        return (self._source.parent / Path(relative).expanduser()).resolve()

    @property
    def postmaster(self) -> str:
        return self.cluster.postmaster or f"postmaster@{self.domains[0].name}"

    def host_fqdn(self, host_name: str) -> str:
        """A host's own DNS name: its name under the first mail domain (mx1.example.com)."""
        return f"{host_name}.{self.domains[0].name}"

    def hosts_in(self, group: str) -> list[str]:
        return [name for name, host in self.hosts.items() if group in host.groups]

    def release_of(self, host_name: str) -> str:
        return self.hosts[host_name].release or self.cluster.release

    @property
    def mailbox_replication(self) -> str | None:
        """How the two mx hosts keep their mailboxes alike (docs/ha.md): ``dsync``, Dovecot 2.3's
        replicator, on Debian 12; ``drbd``, /var/vmail on DRBD run by Pacemaker, on Debian 13,
        whose Dovecot has no replicator; None with one mx host."""
        mx = self.hosts_in("mx")
        if len(mx) < 2:
            return None
        return "drbd" if self.release_of(mx[0]) == "trixie" else "dsync"

    def mailboxes_on_drbd(self, name: str) -> bool:
        """Whether host ``name`` keeps /var/vmail on DRBD, Pacemaker mounting it (docs/ha.md)."""
        return self.mailbox_replication == "drbd" and name in self.hosts_in("mx")


Storage.model_rebuild()
