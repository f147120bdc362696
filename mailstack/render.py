"""Rendering templates for one host, the same way for deploys and for review.

``template_context`` is the one place that decides what a template sees.
"""

from pathlib import Path

from jinja2 import FileSystemLoader
from pyinfra.api.util import get_template

from . import TEMPLATES, dkim, firewall, keys, records, services, tls
from .components import HAPROXY_TLS, ManagedFile, components_for
from .config import Config, ConfigError
from .config.types import format_size

VMAIL_UID = 5000  # the same on every mx host, so replicated mailboxes keep their owner


def template_context(config: Config, host_name: str, review: bool = False, deployer: str | None = None) -> dict:
    """What every template sees. For review (``mailstack render``) a secret the operator has
    not supplied yet is shown as a placeholder; a deploy stops on it instead. ``deployer`` is
    the address a deploy comes from, as the host sees it (unknown in review)."""
    return {
        "config": config,
        "host_name": host_name,
        "node": config.hosts[host_name],
        "format_size": format_size,
        "secret": lambda name: _secret(config, name, review),
        "shared_secret": lambda name, length=32: keys.random_secret(config.secrets_dir / name, length),
        "services": services.SERVICES,
        "stats_port": services.STATS_PORT,
        "replication_port": services.REPLICATION_PORT,
        "haproxy_peers_port": services.HAPROXY_PEERS_PORT,
        "haproxy_tls": HAPROXY_TLS,
        "mta_sts_port": services.MTA_STS_PORT,
        "mta_sts_policy": lambda domain: records.mta_sts_policy(config, domain),
        "deployer": deployer,
        "allowances": firewall.allowances(config, host_name, deployer),
        "rollback_seconds": config.firewall.confirm_seconds + 15,
        "listen": services.listen,
        "addresses": lambda group: services.addresses(config, group),
        "peers": lambda group: [name for name in config.hosts_in(group) if name != host_name],
        "tls": tls.paths(config),
        "tls_names": tls.names(config, host_name),
        "tls_files": lambda: tls.certificate_files(config, host_name),
        "cluster_ca": lambda: tls.cluster_ca(config),
        "mozilla_intermediate_ciphers": tls.MOZILLA_INTERMEDIATE_CIPHERS,
        "vmail_uid": VMAIL_UID,
        "sender_logins": sender_logins(config),
        "dkim_key": lambda domain: dkim.key_file(config, domain).read_text().strip(),
    }


def sender_logins(config: Config) -> dict[str, list[str]]:
    """Who may send as which address: users as themselves, alias addresses by their local targets."""
    users = {user.address for user in config.users}
    logins = {address: [address] for address in sorted(users)}
    for alias in config.aliases:
        owners = [target for target in alias.to if target in users]
        if owners and not alias.address.startswith("@"):
            logins[alias.address] = owners
    return logins


def _secret(config: Config, name: str, review: bool) -> str:
    """The content of a secret file: a path relative to the YAML, or a name in the secrets folder."""
    path = config.path(name) if "/" in name else config.secrets_dir / name
    try:
        return path.read_text().strip()
    except OSError:
        if review:
            return f"MISSING-SECRET:{path}"
        raise ConfigError(config.source, [f"{config.source}: missing secret file {path}"]) from None


def render(
    config: Config, host_name: str, managed: ManagedFile, review: bool = False, deployer: str | None = None
) -> str:
    # pyinfra's own template loader (StrictUndefined, trailing newline kept), as files.template uses.
    template = get_template(managed.template, {"loader": FileSystemLoader(str(TEMPLATES))})
    return template.render({**template_context(config, host_name, review, deployer), **dict(managed.values)})


def render_host(config: Config, host_name: str, out_dir: Path) -> list[Path]:
    """Write every file ``host_name`` would receive under ``out_dir``, mirroring target paths."""
    written = []
    for component in components_for(config, host_name):
        for managed in component.managed_files(config):
            target = out_dir / managed.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(mode=0o600)  # secrets are never readable by others, not even while written
            target.write_text(render(config, host_name, managed, review=True), encoding="utf-8")
            target.chmod(int(managed.mode, 8))
            written.append(target)
    return written
