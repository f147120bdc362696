"""An OpenSSH client configuration for an inventory, for tools that are not pyinfra.

testinfra (and ``mailstack lab ssh``) reach hosts by name through it, with the same
user, key and known_hosts as the deploy, and never prompt. Every value is one line (the
configuration refuses control characters) and file names are in double quotes, which
ssh_config takes for arguments with spaces (and which file names here may not contain),
with ``%`` doubled: ssh_config expands ``%`` tokens in file names.
"""

import os
import subprocess
import threading
from pathlib import Path

from .config import Config
from .inventory import host_data


def _file_name(path: str) -> str:
    return '"' + path.replace("%", "%%") + '"'


def ssh_config(config: Config) -> str:
    blocks = []
    for name in config.hosts:
        data = host_data(config, name)
        lines = [
            f"Host {name}",
            f"  HostName {data['ssh_hostname']}",
            f"  User {data['ssh_user']}",
            f"  Port {data['ssh_port']}",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  ServerAliveInterval 15",  # a host reset under a command ends it within a minute
            "  ServerAliveCountMax 4",
        ]
        if "ssh_key" in data:
            lines += [f"  IdentityFile {_file_name(data['ssh_key'])}", "  IdentitiesOnly yes"]
        if "ssh_known_hosts_file" in data:
            lines += [f"  UserKnownHostsFile {_file_name(data['ssh_known_hosts_file'])}", "  StrictHostKeyChecking yes"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def config_file(config: Config) -> Path:
    """The inventory's ssh_config, written anew in its secrets folder, for ``ssh -F``."""
    path = config.secrets_dir / "ssh_config"
    wanted = ssh_config(config)
    if not path.exists() or path.read_text() != wanted:  # written whole: an ssh may be reading it meanwhile
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = path.with_name(f".ssh_config.{os.getpid()}.{threading.get_ident()}")
        fresh.write_text(wanted)
        fresh.replace(path)
    return path


def run(config: Config, host: str, command: str, **options) -> subprocess.CompletedProcess:
    """``command`` on ``host``, as the deploy reaches it; ``options`` as for ``subprocess.run``."""
    return subprocess.run(["ssh", "-F", str(config_file(config)), host, command], capture_output=True, **options)


def first_answering(config: Config, hosts: list[str], test: str = "true") -> str | None:
    """The first of ``hosts`` that answers over SSH (and where the shell command ``test`` succeeds)."""
    return next((name for name in hosts if run(config, name, test, timeout=30).returncode == 0), None)
