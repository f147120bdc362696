"""`mailstack user`: only the user's own lines change, the result is valid, passwords stay hidden."""

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailstack import users
from mailstack.config import ConfigError, load

LAB = Path(__file__).resolve().parents[2] / "inventories"


@pytest.fixture
def inventory(tmp_path) -> Path:
    shutil.copy(LAB / "lab.py", tmp_path / "lab.py")
    shutil.copy(LAB / "lab.yml", tmp_path / "lab.yml")
    (tmp_path / "lab.yml").chmod(0o640)
    return tmp_path / "lab.py"


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def mailstack(*args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailstack.cli", *args], input=stdin, capture_output=True, text=True)


def test_add_changes_only_the_new_users_lines(inventory):
    config_file = inventory.with_suffix(".yml")
    before = config_file.read_text()
    result = mailstack("user", "add", "zoe@mailstack.test", "--quota", "5G", "--password-stdin",
                       "-i", str(inventory), stdin="a-secret-password\n")
    assert result.returncode == 0, result.stderr
    assert "a-secret-password" not in result.stdout + result.stderr + config_file.read_text()
    changed = _changed_lines(before, config_file.read_text())
    assert [(line[0], line[2:].split(":")[0]) for line in changed] == [
        ("+", "  - address"), ("+", "    password_hash"), ("+", "    quota"),
    ]
    added = next(u for u in load(config_file).users if u.address == "zoe@mailstack.test")
    assert added.quota == 5 << 30
    assert config_file.stat().st_mode & 0o777 == 0o640


def test_hash_verifies_with_the_password():
    hashed = users.hash_password("correct horse")
    salt = hashed.split("$")[2]
    expected = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "correct horse"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert hashed == "{SHA512-CRYPT}" + expected


def test_passwd_and_del_touch_only_that_user(inventory):
    config_file = inventory.with_suffix(".yml")
    before = config_file.read_text()
    users.set_password(config_file, "bob@mailstack.test", users.hash_password("new one"))
    assert [(line[0], line[2:].split(":")[0]) for line in _changed_lines(before, config_file.read_text())] == [
        ("-", "    password_hash"), ("+", "    password_hash"),
    ]
    middle = config_file.read_text()
    users.remove(config_file, "carol@mailstack.test")
    removed = _changed_lines(middle, config_file.read_text())
    assert len(removed) == 3 and all(line.startswith("-") for line in removed)
    assert "carol@mailstack.test" not in [u.address for u in load(config_file).users]


def test_a_user_an_alias_still_names_is_not_removed(inventory):
    config_file = inventory.with_suffix(".yml")
    before = config_file.read_text()
    with pytest.raises(ConfigError, match="bob@mailstack.test is no user or alias; mail to it would bounce"):
        users.remove(config_file, "bob@mailstack.test")
    assert config_file.read_text() == before


def test_a_change_that_breaks_the_configuration_is_not_written(inventory):
    config_file = inventory.with_suffix(".yml")
    before = config_file.read_text()
    with pytest.raises(ConfigError, match="not declared"):
        users.add(config_file, "eve@elsewhere.example", users.hash_password("x"))
    with pytest.raises(ConfigError, match="exists already"):
        users.add(config_file, "alice@mailstack.test", users.hash_password("x"))
    assert config_file.read_text() == before


def test_list_shows_no_hashes(inventory):
    result = mailstack("user", "list", "-i", str(inventory))
    assert "alice@mailstack.test" in result.stdout and "$6$" not in result.stdout


@pytest.mark.parametrize("address", ["*star@mailstack.test", "!bang@mailstack.test", "&amp@mailstack.test"])
def test_add_quotes_an_address_that_plain_yaml_would_misread(inventory, address):
    result = mailstack("user", "add", address, "--password-stdin", "-i", str(inventory), stdin="a-secret-password\n")
    assert result.returncode == 0, result.stderr
    assert address in [user.address for user in load(inventory.with_suffix(".yml")).users]


def test_a_flow_style_user_list_is_named_in_the_error(inventory):
    config_file = inventory.with_suffix(".yml")
    config_file.write_text(config_file.read_text().replace("users:\n  - address: alice", "users: [{address: alice", 1))
    result = mailstack("user", "del", "bob@mailstack.test", "-i", str(inventory))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{config_file}:")
