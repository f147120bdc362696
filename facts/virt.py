"""Facts about the machine a host runs on."""

from pyinfra.api import FactBase


class Container(FactBase[bool]):
    """
    Whether the host is a container (systemd-nspawn, LXC, ...), where the clock,
    the kernel and its modules belong to the machine underneath.

    .. code:: python

        True
    """

    def command(self) -> str:
        return "systemd-detect-virt --container --quiet && echo yes || echo no"

    def process(self, output) -> bool:
        return output[0].strip() == "yes"
