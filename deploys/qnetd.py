"""corosync-qnetd on the quorum host: the third vote of an mx pair on DRBD (docs/ha.md).

Two hosts that lose each other cannot tell a dead peer from a cut link; each would promote
DRBD and take mail the other never sees. Each host's corosync-qdevice asks corosync-qnetd
here for a vote; of two halves cut apart only the one qnetd votes for (``ffsplit``) keeps
quorum, and Pacemaker stops the mail on the other. Both ends speak TLS and check each other's
certificate, made by ``mailstack secrets`` from the quorum link's own CA; qnetd and qdevice
read theirs from an NSS database, which the deploy makes from the PEM files.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from deploys.drbd import on_drbd
from mailstack import certificates
from mailstack.component import Component, ManagedFile, Target
from operations.components import component_files

PEM_FILES = {"ca.pem": "644", "fullchain.pem": "644", "privkey.pem": "600"}


@deploy("Quorum host")
def qnetd():
    apt.packages(name="Install corosync-qnetd", packages=list(QNETD.packages))
    certificate = component_files(name="Install the quorum link's certificate", component=QNETD)
    server.shell(name="Put it in corosync-qnetd's NSS database", _if=certificate.did_change,
                 commands=[nss_database("/etc/corosync/qnetd", "QNetd Cert", owner="coroqnetd")])
    systemd.service(name="Run corosync-qnetd", service="corosync-qnetd", running=True, enabled=True)
    systemd.service(name="Restart corosync-qnetd", service="corosync-qnetd", restarted=True,
                    _if=certificate.did_change)


def pem_files(folder: str) -> tuple[ManagedFile, ...]:
    """The quorum link's CA, one end's certificate and its key under ``folder``/mailstack
    (the TLS component's templates: ``ca``, ``certificate``, ``key``)."""
    return tuple(ManagedFile(f"{folder}/mailstack/{name}", mode=mode, template_path=f"/etc/mailstack/tls/{name}")
                 for name, mode in PEM_FILES.items())


def pem_values(target: Target, end: str) -> dict:
    ca, certificate, key = certificates.quorum_files(target.config, end)
    return {"ca": target.secret(ca), "certificate": target.secret(certificate), "key": target.secret(key)}


def pem_check(folder: str) -> str:
    """The certificate is the CA's and the key is one."""
    files = f"{{root}}{folder}/mailstack"
    return (f"openssl verify -CAfile {files}/ca.pem {files}/fullchain.pem >/dev/null"
            f" && openssl pkey -noout -in {files}/privkey.pem")


def nss_database(folder: str, nickname: str, owner: str = "root") -> str:
    """Make ``folder``/nssdb afresh from the PEM files beside it, as corosync's certutil
    scripts make it (no password; the CA trusted as "QNet CA", the certificate and key under
    ``nickname``), readable by the group ``owner``; it replaces the old one in one move."""
    files, new = f"{folder}/mailstack", f"{folder}/nssdb.new"
    return " && ".join([
        f"rm -rf {new}",
        f"install -d -m 750 -g {owner} {new}",
        f"certutil -N -d {new} --empty-password",
        f"certutil -A -d {new} -n 'QNet CA' -t CT,c,c -i {files}/ca.pem",
        f"openssl pkcs12 -export -in {files}/fullchain.pem -inkey {files}/privkey.pem -name '{nickname}'"
        f" -passout pass: -out {new}/import.p12",
        f"pk12util -d {new} -i {new}/import.p12 -W ''",
        f"rm {new}/import.p12",
        f"chgrp -R {owner} {new} && chmod 640 {new}/*",
        f"rm -rf {folder}/nssdb && mv {new} {folder}/nssdb",
    ])


QNETD = Component(
    qnetd,
    frozenset({"quorum"}),
    files=pem_files("/etc/corosync/qnetd"),
    check=pem_check("/etc/corosync/qnetd"),
    values=lambda target: pem_values(target, "qnetd"),
    when=on_drbd,
    packages=("corosync-qnetd",),
)
