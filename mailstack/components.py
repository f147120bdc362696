"""What each component puts on a host: its groups, its files and the tool that checks them.

The deploys and ``mailstack render`` both read this registry, so what an operator
reviews is exactly what a deploy writes.
"""

from collections.abc import Callable
from dataclasses import dataclass

from . import TEMPLATES
from .config import Config


@dataclass(frozen=True)
class ManagedFile:
    path: str
    mode: str = "644"
    user: str = "root"
    group: str = "root"
    create_only: bool = False
    """Written once and then owned by the service (a zone file that takes dynamic updates)."""
    template_path: str | None = None
    """For one template that makes several files (one per domain): its target-like path."""
    values: tuple[tuple[str, object], ...] = ()
    """Extra template variables of this file, such as the domain it is for."""

    @property
    def template(self) -> str:
        """The template mirrors the target path: /etc/x.conf -> templates/etc/x.conf.j2."""
        return str(TEMPLATES / f"{(self.template_path or self.path).lstrip('/')}.j2")


@dataclass(frozen=True)
class Component:
    name: str
    groups: frozenset[str]
    files: tuple[ManagedFile, ...] | Callable[[Config], tuple[ManagedFile, ...]]
    check: str | None = None
    """Shell command that validates the files staged under ``{root}``; it must fail on a bad file."""
    when: Callable[[Config], bool] = lambda config: True

    def managed_files(self, config: Config) -> tuple[ManagedFile, ...]:
        return self.files(config) if callable(self.files) else self.files

    def applies_to(self, config: Config, host_name: str) -> bool:
        in_group = not self.groups or bool(self.groups & set(config.hosts[host_name].groups))
        return in_group and self.when(config)


EVERY_HOST = frozenset()
MAIL = frozenset({"mx"})
FRONT = frozenset({"lb"})
# postconf only warns about unknown parameters and malformed master.cf lines: treat warnings as errors.
POSTFIX_CHECK = (
    'warnings=$(postconf -c {root}/etc/postfix -n 2>&1 >/dev/null; postconf -c {root}/etc/postfix -M 2>&1 >/dev/null)'
    ' && [ -z "$warnings" ] || (echo "$warnings" >&2; exit 1)'
    " && postfix -c {root}/etc/postfix check"
)

def dkim_keys(config: Config) -> tuple[ManagedFile, ...]:
    """One private key file per mail domain, readable by Rspamd only."""
    return tuple(
        ManagedFile(
            f"/var/lib/rspamd/dkim/{domain.name}.{domain.dkim_selector}.key",
            mode="600", user="_rspamd", group="_rspamd",
            template_path="/var/lib/rspamd/dkim/domain.key", values=(("domain", domain),),
        )
        for domain in config.domains
    )


HAPROXY_TLS = "/etc/haproxy/tls/mailstack.pem"
"""Links to the host's chain, and as ``.pem.key`` to its key, where HAProxy looks for both."""


def haproxy_files(config: Config) -> tuple[ManagedFile, ...]:
    """The configuration, and each domain's MTA-STS policy, which HAProxy serves itself."""
    policies = tuple(
        ManagedFile(f"/etc/haproxy/mta-sts/{domain.name}.txt", template_path="/etc/haproxy/mta-sts/policy.txt",
                    values=(("domain", domain),))
        for domain in config.domains if domain.mta_sts != "none"
    )
    return (ManagedFile("/etc/haproxy/haproxy.cfg"), ManagedFile("/etc/sysctl.d/60-mailstack-lb.conf")) + policies


# HAProxy reads the policies and the certificate while it parses: the check points the
# configuration at the staged policies and at a throwaway certificate, so it tests the
# configuration alone (the certificate is the tls component's).
HAPROXY_CHECK = (
    "mkdir -p {root}/etc/haproxy/tls"
    " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=check"
    f" -keyout {{root}}{HAPROXY_TLS}.key -out {{root}}{HAPROXY_TLS} 2>/dev/null"
    " && sed 's#/etc/haproxy/#{root}/etc/haproxy/#g' {root}/etc/haproxy/haproxy.cfg > {root}/haproxy-check.cfg"
    " && haproxy -c -q -f {root}/haproxy-check.cfg"
)


# keepalived --config-test fails on scripts that do not exist yet: the staged ones stand in.
KEEPALIVED_CHECK = (
    "sh -n {root}/etc/keepalived/notify.sh && sh -n {root}/etc/keepalived/haproxy-healthy.sh"
    " && sed 's#/etc/keepalived/#{root}/etc/keepalived/#' {root}/etc/keepalived/keepalived.conf"
    " > {root}/keepalived-check.conf && keepalived --config-test --use-file {root}/keepalived-check.conf"
)


FIREWALL_FILES = tuple(
    ManagedFile(f"/etc/mailstack/firewall/rules.v{family}", mode="600",
                template_path="/etc/mailstack/firewall/rules", values=(("family", family),))
    for family in (4, 6)
) + (ManagedFile("/usr/local/sbin/mailstack-firewall", mode="755"),)
FIREWALL_CHECK = (
    "iptables-restore --test {root}/etc/mailstack/firewall/rules.v4"
    " && ip6tables-restore --test {root}/etc/mailstack/firewall/rules.v6"
    " && sh -n {root}/usr/local/sbin/mailstack-firewall"
)


# fail2ban-client tests a whole configuration folder: the shipped one with the staged files over it.
FAIL2BAN_CHECK = (
    "cp -a /etc/fail2ban {root}/fail2ban-check && cp -a {root}/etc/fail2ban/. {root}/fail2ban-check/"
    " && fail2ban-client -c {root}/fail2ban-check --test >/dev/null"
)


def tls_files(config: Config) -> tuple[ManagedFile, ...]:
    """The host's chain and key; with the internal CA also the CA, which replication peers trust."""
    files = (ManagedFile("/etc/mailstack/tls/fullchain.pem"), ManagedFile("/etc/mailstack/tls/privkey.pem", mode="600"))
    return files + ((ManagedFile("/etc/mailstack/tls/ca.pem"),) if config.tls.mode == "internal" else ())


RSPAMD_FILES = tuple(
    ManagedFile(f"/etc/rspamd/local.d/{name}")
    for name in ("worker-proxy.inc", "redis.conf", "dkim_signing.conf", "greylist.conf", "ratelimit.conf",
                 "milter_headers.conf", "options.inc")
) + (ManagedFile("/etc/rspamd/override.d/options.inc"),)
# Each file on its own: Rspamd includes local.d files with try=true, so a whole-tree test
# passes over a broken one.
RSPAMD_CHECK = (
    'for file in {root}/etc/rspamd/local.d/* {root}/etc/rspamd/override.d/*; do'
    ' rspamadm configtest -c "$file" >/dev/null || exit 1; done'
)


COMPONENTS = (
    Component(
        "base",
        EVERY_HOST,
        files=(
            ManagedFile("/etc/apt/apt.conf.d/90mailstack"),
            ManagedFile("/etc/timezone"),
            ManagedFile("/etc/systemd/timesyncd.conf.d/mailstack.conf"),
        ),
        check="apt-config -c {root}/etc/apt/apt.conf.d/90mailstack dump >/dev/null",
    ),
    Component(
        "sshd",
        EVERY_HOST,
        files=(ManagedFile("/etc/ssh/sshd_config.d/mailstack.conf"),),
        # sshd -t wants its privilege separation folder, which only a running sshd has made.
        check="install -d -m 755 /run/sshd && sshd -t -f {root}/etc/ssh/sshd_config.d/mailstack.conf",
    ),
    Component("firewall", EVERY_HOST, files=FIREWALL_FILES, check=FIREWALL_CHECK),
    # Disks, arrays and mounts rather than files: deploys/storage.py and mailstack/storage.py.
    Component("storage", frozenset({"storage"}), files=()),
    Component(
        "fail2ban",
        EVERY_HOST,
        files=(
            ManagedFile("/etc/fail2ban/jail.d/mailstack.local"),
            ManagedFile("/etc/fail2ban/action.d/mailstack-proxy.conf"),
        ),
        check=FAIL2BAN_CHECK,
    ),
    Component(
        "bind",
        frozenset({"ns"}),
        files=(
            ManagedFile("/etc/bind/named.conf.options"),
            ManagedFile("/etc/bind/named.conf.local", mode="640", group="bind"),
            ManagedFile("/var/lib/bind/mail-domain.zone", user="bind", group="bind", create_only=True),
        ),
        check=(
            "mkdir -p {root}/var/cache/bind"  # named-checkconf changes into the options' directory
            " && named-checkconf -t {root} /etc/bind/named.conf.options"
            " && named-checkconf -t {root} /etc/bind/named.conf.local"
            " && zone={root}/var/lib/bind/mail-domain.zone"
            ' && named-checkzone -q "$(sed -n "s/^\\$ORIGIN //p" $zone)" $zone'
        ),
    ),
    Component(
        "pebble",
        frozenset({"ns"}),
        files=(
            ManagedFile("/etc/pebble/pebble-config.json"),
            ManagedFile("/etc/pebble/cert.pem"),
            ManagedFile("/etc/pebble/key.pem", mode="600"),
            ManagedFile("/etc/systemd/system/pebble.service"),
        ),
        check="python3 -m json.tool {root}/etc/pebble/pebble-config.json >/dev/null",
    ),
    Component("haproxy", FRONT, files=haproxy_files, check=HAPROXY_CHECK),
    Component(
        "keepalived",
        FRONT,
        files=(
            ManagedFile("/etc/keepalived/keepalived.conf", mode="600"),
            ManagedFile("/etc/keepalived/notify.sh", mode="755"),
            ManagedFile("/etc/keepalived/haproxy-healthy.sh", mode="755"),
        ),
        check=KEEPALIVED_CHECK,
    ),
    Component(
        "tls",
        MAIL | FRONT,
        files=tls_files,
        check="openssl x509 -noout -in {root}/etc/mailstack/tls/fullchain.pem"
        " && openssl pkey -noout -in {root}/etc/mailstack/tls/privkey.pem",
        when=lambda config: config.tls.mode != "acme",
    ),
    Component(
        "certbot",
        MAIL | FRONT,
        files=(
            ManagedFile("/etc/letsencrypt/mailstack-rfc2136.ini", mode="600"),
            ManagedFile("/etc/letsencrypt/renewal-hooks/deploy/mailstack", mode="755"),
            ManagedFile("/etc/systemd/system/certbot.service.d/mailstack.conf"),
        ),
        check="sh -n {root}/etc/letsencrypt/renewal-hooks/deploy/mailstack",
        when=lambda config: config.tls.mode == "acme",
    ),
    Component(
        "rspamd",
        MAIL,
        files=lambda config: RSPAMD_FILES + dkim_keys(config),
        check=RSPAMD_CHECK,
    ),
    Component(
        "postfix",
        MAIL,
        files=(
            ManagedFile("/etc/postfix/main.cf"),
            ManagedFile("/etc/postfix/master.cf"),
            ManagedFile("/etc/postfix/virtual_mailboxes"),
            ManagedFile("/etc/postfix/virtual_aliases"),
            ManagedFile("/etc/postfix/sender_logins"),
            ManagedFile("/etc/postfix/postscreen_access.cidr"),
        ),
        check=POSTFIX_CHECK,
    ),
    Component(
        "dovecot",
        MAIL,
        files=(
            ManagedFile("/etc/dovecot/dovecot.conf"),
            ManagedFile("/etc/dovecot/users", mode="640", group="dovecot"),
            ManagedFile("/etc/dovecot/replication.conf", mode="640", group="dovecot"),
            ManagedFile("/etc/systemd/system/dovecot.service.d/mailstack.conf"),
        ),
        check="doveconf -n -c {root}/etc/dovecot/dovecot.conf >/dev/null",
    ),
)


def components_for(config: Config, host_name: str) -> list[Component]:
    return [component for component in COMPONENTS if component.applies_to(config, host_name)]


def component(name: str) -> Component:
    return next(c for c in COMPONENTS if c.name == name)
