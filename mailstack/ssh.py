"""An OpenSSH client configuration for an inventory, for tools that are not pyinfra.

testinfra (and ``mailstack lab ssh``) reach hosts by name through it, with the same
user, key and known_hosts as the deploy, and never prompt. Every value is one line (the
configuration refuses control characters) and file names are in double quotes, which
ssh_config takes for arguments with spaces (and which file names here may not contain),
with ``%`` doubled: ssh_config expands ``%`` tokens in file names.
"""

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
        ]
        if "ssh_key" in data:
            lines += [f"  IdentityFile {_file_name(data['ssh_key'])}", "  IdentitiesOnly yes"]
        if "ssh_known_hosts_file" in data:
            lines += [f"  UserKnownHostsFile {_file_name(data['ssh_known_hosts_file'])}", "  StrictHostKeyChecking yes"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
