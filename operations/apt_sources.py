"""Operations on where apt takes packages from."""

import shlex

from pyinfra import host
from pyinfra.api import operation

from facts.apt import MAIN_ENTRY, DebianSourcesWithout, has_component


@operation()
def debian_component(component: str):
    """
    Debian's own apt sources take ``component`` (contrib, non-free) beside main.

    + component: the archive section to add to every entry that has main

    **Example:**

    .. code:: python

        contrib = debian_component(name="Take packages from contrib", component="contrib")
        apt.update(name="Update apt lists", _if=contrib.did_change)
    """
    files = host.get_fact(DebianSourcesWithout, component=component)
    if not files:
        host.noop(f"Debian's apt sources take {component}")
        return
    yield add_component(component, files)


def add_component(component: str, files: list[str]) -> str:
    """Shell: add ``component`` after main to each entry of ``files`` that has main and lacks it."""
    script = f"/{MAIN_ENTRY}/{{/{has_component(component)}/!s/[[:space:]]main([[:space:]]|$)/ main {component}\\1/}}"
    return f"sed -i -E {shlex.quote(script)} {' '.join(shlex.quote(file) for file in files)}"
