"""Operations on software RAID (mdadm)."""

import shlex

from pyinfra import host
from pyinfra.api import operation

from facts.mdadm import OURS, MdConfig, array_line


@operation()
def md_config(array_name: str, device: str, mail_to: str):
    """
    Record array ``array_name`` (running as ``device``) in mdadm.conf and the initramfs, so it
    assembles under its name at boot, and send mdadm's alerts to ``mail_to``. Other arrays'
    lines are kept.

    + array_name: the array's name (``/dev/md/<name>``)
    + device: the md device it runs as now
    + mail_to: where mdadm's monitor mails failures (MAILADDR)

    **Example:**

    .. code:: python

        md_config(name="Record the array", array_name="vmail", device="/dev/md127",
                  mail_to="postmaster@example.com")
    """
    found = host.get_fact(MdConfig, array_name=array_name, device=device)
    if found["running"] and sorted(found["configured"]) == sorted([f"MAILADDR {mail_to}", found["running"]]):
        host.noop(f"{device} is recorded in mdadm.conf")
        return
    conf = "/etc/mdadm/mdadm.conf"
    yield (
        f"{{ awk -v array={shlex.quote(f'/dev/md/{array_name}')} {shlex.quote(f'!({OURS})')} {conf};"
        f" echo {shlex.quote(f'MAILADDR {mail_to}')}; {array_line(array_name, device)}; }} > {conf}.new"
        f" && mv {conf}.new {conf}"
    )
    yield "update-initramfs -u"
