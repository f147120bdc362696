"""Facts about the SSH session the deploy runs in."""

from pyinfra.api import FactBase


class DeployerAddress(FactBase[str | None]):
    """
    The address the deploy connects from, as the host sees it (``$SSH_CONNECTION``):
    the firewall keeps SSH open for it.

    .. code:: python

        "198.51.100.7"
    """

    def command(self) -> str:
        return 'echo "${SSH_CONNECTION:-}"'

    def process(self, output) -> str | None:
        fields = " ".join(output).split()
        return fields[0] if fields else None
