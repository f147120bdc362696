"""pyinfra inventories built from the configuration beside them.

An inventory file is two lines::

    from mailstack.inventory import groups_for
    globals().update(groups_for(__file__))

so hosts, groups and addresses live only in the YAML file.
"""

import sys
from pathlib import Path

from .config import Config, ConfigError, load

# pyinfra takes hosts in the order their groups come: a rolling (--serial) deploy then
# converges the lab services, the backup repository, the quorum host and the backends before
# the front.
HOST_ORDER = ("ns", "outside", "legacy", "storage", "backup", "quorum", "mx", "lb", "mon")
SSH_CLIENT_CONFIG = Path(__file__).with_name("pyinfra_ssh_config")


def config_path(inventory: str | Path) -> Path:
    """The configuration that belongs to an inventory: prod.py -> prod.yml."""
    return Path(inventory).with_suffix(".yml")


def load_for(inventory: str | Path) -> Config:
    """The configuration of an inventory file (or of the YAML file itself)."""
    inventory = Path(inventory)
    if inventory.suffix not in (".py", ".yml"):
        raise ConfigError(inventory, [f"{inventory}: not an inventory (expected inventories/NAME.py)"])
    if not inventory.exists():
        raise ConfigError(inventory, [f"{inventory}: no such inventory file"])
    return load(config_path(inventory))


def host_data(config: Config, host_name: str) -> dict:
    """pyinfra host data: how to reach the host, and where its configuration lives."""
    host = config.hosts[host_name]
    data = {
        "ssh_hostname": str(host.address),
        "ssh_user": config.ssh.user,
        "ssh_port": config.ssh.port,
        "ssh_config_file": str(SSH_CLIENT_CONFIG),
        "mailstack_config": str(config.source),
    }
    if host.vrrp_priority is not None:
        data["vrrp_priority"] = host.vrrp_priority
    if config.ssh.user != "root":
        data["_sudo"] = True
    if config.ssh.key:
        data["ssh_key"] = str(config.path(config.ssh.key))
    if config.ssh.known_hosts:
        data["ssh_known_hosts_file"] = str(config.path(config.ssh.known_hosts))
        data["ssh_strict_host_key_checking"] = "yes"
    return data


def groups_for(inventory_file: str) -> dict[str, list[tuple[str, dict]]]:
    """The inventory groups of ``inventory_file``, or exit with the configuration's errors.

    A bad configuration stops pyinfra here, before any host is contacted.
    """
    try:
        config = load_for(inventory_file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    return {
        group: [(name, host_data(config, name)) for name in config.hosts_in(group)]
        for group in HOST_ORDER
        if config.hosts_in(group)
    }
