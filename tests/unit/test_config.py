"""The configuration loader: valid examples load, every mistake is one clear line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailstack.config import ConfigError, load
from mailstack.inventory import load_for

FIXTURES = Path(__file__).parent / "fixtures"
BROKEN = sorted((FIXTURES / "broken").glob("*.yml"))


def test_examples_are_valid(example_inventory):
    config = load_for(example_inventory)
    assert config.hosts_in("mx") and config.hosts_in("lb")


def test_sizes_and_defaults_are_normalised():
    config = load(FIXTURES / "minimal.yml")
    assert config.mail.default_quota == 2 * 1024**3
    assert config.postmaster == "postmaster@example.com"
    assert config.firewall.rate_limits.submission.new_per_minute == 10


def _expected(fixture: Path) -> str:
    return fixture.read_text().splitlines()[0].removeprefix("# expect: ")


@pytest.mark.parametrize("fixture", BROKEN, ids=lambda path: path.stem)
def test_broken_configuration_names_file_line_and_key(fixture):
    with pytest.raises(ConfigError) as caught:
        load(fixture)
    assert any(
        problem.startswith(f"{fixture}:") and problem.endswith(_expected(fixture)) for problem in caught.value.problems
    ), caught.value.problems


@pytest.mark.parametrize("fixture", BROKEN[:3], ids=lambda path: path.stem)
def test_cli_prints_the_error_without_traceback(fixture, tmp_path):
    inventory = tmp_path / "broken.py"
    inventory.write_text("")
    (tmp_path / "broken.yml").write_text(fixture.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "validate", "--inventory", str(inventory)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert _expected(fixture) in result.stderr
    assert result.stdout == ""


def test_secrets_are_not_echoed_in_errors(tmp_path):
    text = (FIXTURES / "minimal.yml").read_text()
    secret = "correct-horse-battery-staple"
    broken = tmp_path / "x.yml"
    broken.write_text(text.replace("\"{SHA512-CRYPT}", f"\"{secret}{{SHA512-CRYPT}}", 1))
    with pytest.raises(ConfigError) as caught:
        load(broken)
    assert secret not in str(caught.value)


def test_unknown_top_level_key_lists_what_is_allowed(tmp_path):
    data = yaml.safe_load((FIXTURES / "minimal.yml").read_text())
    data["zzz"] = 1
    broken = tmp_path / "x.yml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"zzz: unknown key; allowed here: cluster, hosts"):
        load(broken)


def test_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "x.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load(fifo)


def test_render_into_a_path_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").touch()
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "render", "--inventory", "inventories/prod.py", "--host", "mx1",
         "--out", str(tmp_path / "file/out")], capture_output=True, text=True, cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"--out {tmp_path}/file/out: cannot write")


@pytest.mark.parametrize("command", [["render", "--out", "/nonexistent"], ["verify"]])
def test_an_unknown_host_is_one_line_before_any_host_is_touched(command):
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", command[0], "--inventory", "inventories/prod.py", "--host", "mx9",
         *command[1:]], capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("--host: no host mx9 in ") and result.stderr.strip().endswith("/prod.yml")
    assert len(result.stderr.splitlines()) == 1


def test_an_ntp_server_may_be_an_address(tmp_path):
    config = tmp_path / "x.yml"
    data = yaml.safe_load((FIXTURES / "minimal.yml").read_text())
    data["cluster"]["ntp_servers"] = ["192.0.2.123", "2001:db8::123", "ntp.example.net"]
    config.write_text(yaml.safe_dump(data))
    assert load(config).cluster.ntp_servers == ["192.0.2.123", "2001:db8::123", "ntp.example.net"]
