"""Facts about where apt takes packages from."""

import shlex

from pyinfra.api import FactBase

# Where Debian keeps its own archive's entries: the one-line list of an installed system and
# the deb822 file of Debian's cloud images.
DEBIAN_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources")
# An entry of Debian's archive with the main section, one-line ("deb URI SUITE main ...") or
# deb822 ("Components: main ..."), in the extended regular expressions of grep and sed.
MAIN_ENTRY = r"^(deb(-src)?[[:space:]].*|Components:.*)[[:space:]]main([[:space:]]|$)"


def has_component(component: str) -> str:
    return rf"[[:space:]]{component}([[:space:]]|$)"


class DebianSourcesWithout(FactBase[list[str]]):
    """
    Files of Debian's own apt sources (``DEBIAN_SOURCES``) with an entry that takes the
    ``main`` section but not ``component``.

    .. code:: python

        ["/etc/apt/sources.list"]
    """

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, component) -> str:
        lacking = f"grep -E {shlex.quote(MAIN_ENTRY)} \"$file\" | grep -qvE {shlex.quote(has_component(component))}"
        return f"for file in {' '.join(DEBIAN_SOURCES)}; do [ -f \"$file\" ] && {lacking} && echo \"$file\"; done; true"

    def process(self, output) -> list[str]:
        return [line for line in output if line]
