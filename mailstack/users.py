"""Adding, removing and re-keying users in a configuration file, by editing its text.

Only the lines of the user concerned change; every other line (comments, order, quoting)
stays as it was. The result is validated before it is written, and written atomically.
Passwords are hashed here (SHA512-CRYPT, which Dovecot verifies) and never stored or shown.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from .config import ConfigError
from .config.loader import load_text


def hash_password(password: str, salt: str | None = None) -> str:
    """A SHA512-CRYPT hash; the password goes to openssl on stdin, never on a command line."""
    if not password or "\n" in password:
        raise ValueError("a password must be one non-empty line")
    result = subprocess.run(
        ["openssl", "passwd", "-6", *(["-salt", salt] if salt else []), "-stdin"],
        input=password, capture_output=True, text=True, check=True,
    )
    return "{SHA512-CRYPT}" + result.stdout.strip()


def matches(password_hash: str, password: str) -> bool:
    """Whether ``password_hash`` (SHA512-CRYPT, as ``hash_password`` makes it) is ``password``'s."""
    scheme, _, crypted = password_hash.partition("}")
    fields = crypted.split("$")
    if scheme != "{SHA512-CRYPT" or len(fields) != 4 or fields[1] != "6":
        return False
    return hash_password(password, salt=fields[2]) == password_hash


def _users_node(text: str, path: Path) -> yaml.SequenceNode | None:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key, value in root.value:
        if key.value == "users":
            if not isinstance(value, yaml.SequenceNode) or value.flow_style or not value.value:
                where = f"{path}:{key.start_mark.line + 1}"
                raise ConfigError(path, [f"{where}: users: must be a block list (one `- address: ...` per user)"
                                         " to be edited"])
            return value
    return None


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain where YAML reads it back as the same text, else quoted
    (an address may begin with ``*``, ``!`` or ``&``, which plain YAML takes for syntax)."""
    try:
        if yaml.safe_load(text) == text and not text.startswith(("*", "!", "&", "%", "@", "`", "'", '"')):
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text)


def _field(item: yaml.MappingNode, name: str) -> yaml.Node | None:
    return next((value for key, value in item.value if key.value == name), None)


def _find(users: yaml.SequenceNode | None, address: str) -> int | None:
    for index, item in enumerate(users.value if users else []):
        if (node := _field(item, "address")) is not None and node.value.lower() == address.lower():
            return index
    return None


def _end_line(item: yaml.MappingNode) -> int:
    """The line after an item's last value (0-based)."""
    last = max((value.end_mark for _, value in item.value), key=lambda mark: mark.index)
    return last.line if last.column == 0 else last.line + 1


def _edit(path: Path, change) -> None:
    text = path.read_text(encoding="utf-8")
    new_text = change(text)
    load_text(new_text, path)  # a ConfigError here leaves the file untouched
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as temporary:
        temporary.write(new_text)
    os.chmod(temporary.name, path.stat().st_mode & 0o777)
    os.replace(temporary.name, path)


def add(path: Path, address: str, password_hash: str, quota: str | None = None) -> None:
    def change(text: str) -> str:
        users = _users_node(text, path)
        if _find(users, address) is not None:
            raise ConfigError(path, [f"{path}: users: {address} exists already (use `user passwd`)"])
        lines = text.splitlines(keepends=True)
        if users is None:  # the first user: a new section at the end
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append("users:\n")
            entry_indent, at = "  ", len(lines)
        else:
            entry_indent, at = " " * (users.value[0].start_mark.column - 2), _end_line(users.value[-1])
        entry = [
            f"{entry_indent}- address: {_scalar(address)}\n", f"{entry_indent}  password_hash: \"{password_hash}\"\n"
        ]
        if quota:
            entry.append(f"{entry_indent}  quota: {quota}\n")
        return "".join(lines[:at] + entry + lines[at:])

    _edit(path, change)


def remove(path: Path, address: str) -> None:
    def change(text: str) -> str:
        users = _users_node(text, path)
        index = _find(users, address)
        if index is None:
            raise ConfigError(path, [f"{path}: users: no user {address}"])
        lines = text.splitlines(keepends=True)
        start = users.value[index].start_mark.line
        return "".join(lines[:start] + lines[_end_line(users.value[index]):])

    _edit(path, change)


def set_password(path: Path, address: str, password_hash: str) -> None:
    def change(text: str) -> str:
        users = _users_node(text, path)
        index = _find(users, address)
        if index is None:
            raise ConfigError(path, [f"{path}: users: no user {address}"])
        node = _field(users.value[index], "password_hash")
        return text[: node.start_mark.index] + f'"{password_hash}"' + text[node.end_mark.index :]

    _edit(path, change)
