"""Facts about DRBD resources."""

import shlex

from pyinfra.api import FactBase


class DrbdMetadata(FactBase[bool]):
    """
    Whether the backing disk of a DRBD resource holds DRBD's metadata: an attached disk does;
    a detached one is read (``drbdadm dump-md`` refuses to read an attached one).
    """

    @staticmethod
    def default() -> bool:
        return False

    def requires_command(self, resource: str) -> str:
        return "drbdadm"

    def command(self, resource: str) -> str:
        name = shlex.quote(resource)
        return (
            f"case $(drbdadm dstate {name} 2>/dev/null | cut -d/ -f1) in"
            f" ''|Diskless|Unconfigured) if drbdadm dump-md {name} >/dev/null 2>&1; then echo yes; else echo no; fi;;"
            " *) echo yes;; esac"
        )

    def process(self, output: list[str]) -> bool:
        return output == ["yes"]
