"""The generated ssh_config, read back by OpenSSH itself (``ssh -G``): for every hostile value
the configuration accepts as the SSH user, key or known_hosts file, ssh uses exactly that
value, and nothing else changes (a ``ProxyCommand`` there would run on the operator's machine)."""

import subprocess

import pytest
import yaml

from mailstack.config import ConfigError
from mailstack.config.loader import load_text
from mailstack.ssh import ssh_config
from tests.unit.test_config_fuzz import HOSTILE, RICH


def _as_ssh_reads_it(config, folder) -> dict[str, str]:
    path = folder / "ssh_config"
    path.write_text(ssh_config(config))
    shown = subprocess.run(["ssh", "-G", "-F", str(path), "mx1"], capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in shown.splitlines())


@pytest.mark.parametrize("field", ["user", "key", "known_hosts"])
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_ssh_uses_exactly_the_configured_value(field, value, tmp_path):
    document = RICH | {"ssh": RICH["ssh"] | {field: value}}
    try:
        config = load_text(yaml.safe_dump(document), tmp_path / "x.yml")
    except ConfigError:
        return
    original = _as_ssh_reads_it(load_text(yaml.safe_dump(RICH), tmp_path / "x.yml"), tmp_path)
    shown = _as_ssh_reads_it(config, tmp_path)
    expected = {
        "user": config.ssh.user,
        "identityfile": str(config.path(config.ssh.key)).replace("%", "%%"),  # shown before expansion
        "userknownhostsfile": str(config.path(config.ssh.known_hosts)),
    }
    assert {key: shown[key] for key in expected} == expected
    assert shown.keys() == original.keys()
    assert "proxycommand" not in shown


def test_ssh_gives_up_on_a_host_that_stopped_answering(tmp_path):
    shown = _as_ssh_reads_it(load_text(yaml.safe_dump(RICH), tmp_path / "x.yml"), tmp_path)
    assert (shown["serveraliveinterval"], shown["serveralivecountmax"]) == ("15", "4")
