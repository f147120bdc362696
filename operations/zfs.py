"""Operations on ZFS datasets (beside pyinfra's own ``operations.zfs``)."""

import shlex

from pyinfra import host
from pyinfra.api import operation

from facts.zfs import ZfsProperties

# ``zfs get -p`` shows no limit as 0, but ``zfs create`` and ``zfs set`` refuse 0 for these.
LIMITS = ("quota", "refquota", "reservation", "refreservation")


def settable(key: str, value: str) -> str:
    """``key=value`` as ``zfs create -o`` and ``zfs set`` take it."""
    return f"{key}={'none' if key in LIMITS and value == '0' else value}"


@operation()
def zfs_dataset(dataset: str, properties: dict[str, str]):
    """
    ZFS filesystem ``dataset`` exists, mounted, with ``properties`` as ``zfs get -p`` shows them.

    + dataset: the dataset's full name (``tank/vmail``)
    + properties: property to exact value (sizes in bytes; a quota of 0 is none)

    pyinfra's ``zfs.dataset`` compares ZFS's rounded sizes ("1.50G") with the wanted ones, so
    a quota would be set again on every run; here both sides are exact.

    **Example:**

    .. code:: python

        zfs_dataset(name="Dataset tank/vmail", dataset="tank/vmail",
                    properties={"mountpoint": "/var/vmail", "quota": "214748364800"})
    """
    found = host.get_fact(ZfsProperties, properties=("mounted", *sorted(properties))).get(dataset)
    if found is None:
        options = [word for key, value in properties.items() for word in ("-o", settable(key, value))]
        yield shlex.join(["zfs", "create", *options, dataset])
        return
    changed = [settable(key, value) for key, value in properties.items() if found.get(key) != value]
    unmounted = properties.get("mountpoint", "none") != "none" and found.get("mounted") != "yes"
    if not (changed or unmounted):
        host.noop(f"{dataset} is as configured")
        return
    if changed:
        yield shlex.join(["zfs", "set", *changed, dataset])
    if unmounted:
        yield shlex.join(["zfs", "mount", dataset])
