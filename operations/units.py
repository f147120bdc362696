"""Operations on systemd units."""

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.systemd import SystemdEnabled


@operation()
def enabled_at_boot(units: list[str]):
    """
    Enable ``units`` for boot, starting none of them. One fact for all of them: pyinfra's
    ``systemd.service`` asks two per unit, half a second each on a guest without KVM.

    + units: full unit names (``zfs.target``, ``zfs-mount.service``)

    **Example:**

    .. code:: python

        enabled_at_boot(name="Import the pool at boot", units=["zfs-import-cache.service", "zfs-import.target"])
    """
    enabled = host.get_fact(SystemdEnabled, services=units)
    disabled = [unit for unit in units if not enabled.get(unit)]
    if not disabled:
        host.noop(f"{', '.join(units)} enabled")
        return
    yield StringCommand("systemctl", "enable", *(QuoteString(unit) for unit in disabled))
