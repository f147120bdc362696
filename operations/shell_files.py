"""Operations on files of shell variable assignments that services source."""

import re
import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FileContents


@operation()
def shell_variables(path: str, values: dict[str, str]):
    """
    A file of shell variables that a service sources (``/etc/zfs/zed.d/zed.rc``) sets each
    of ``values``, once: their lines, commented out or not, give way to one line each.

    + path: the file, which the package that owns it has installed
    + values: variable name to value

    **Example:**

    .. code:: python

        shell_variables(name="Mail ZFS faults", path="/etc/zfs/zed.d/zed.rc",
                        values={"ZED_EMAIL_ADDR": "postmaster@example.com"})
    """
    assigning = re.compile(_assigning(values))
    if [line for line in host.get_fact(FileContents, path=path) or [] if assigning.match(line)] == _assignments(values):
        host.noop(f"{path} sets {', '.join(values)}")
        return
    yield set_shell_variables(path, values)


def set_shell_variables(path: str, values: dict[str, str]) -> str:
    """Shell: drop every line assigning one of ``values``, commented out or not, then add one each."""
    lines = " ".join(shlex.quote(line) for line in _assignments(values))
    drop = shlex.quote(f"/{_assigning(values)}/d")
    return f"sed -i -E {drop} {shlex.quote(path)} && printf '%s\\n' {lines} >> {shlex.quote(path)}"


def _assignments(values: dict[str, str]) -> list[str]:
    return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def _assigning(values: dict[str, str]) -> str:
    """A line that assigns one of ``values`` or is such a line commented out (Python's re and sed -E)."""
    return rf"^#?\s*({'|'.join(values)})="
