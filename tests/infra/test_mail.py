"""The mail core on mx hosts: Postfix, Dovecot and Rspamd running, listening, configured, serving TLS."""

import shlex

import pytest

from deploys.rspamd import MILTER_SOCKET
from mailstack import capacity
from mailstack.services import CLUSTERED
from tests.infra.tls import negotiated_cipher

GROUPS = ["mx"]
pytestmark = pytest.mark.usefixtures("mail_runs_here")
TLS_PORTS = {25: "smtp", 465: None, 587: "smtp", 143: "imap", 993: None, 4190: "sieve"}
FOURTEEN_DAYS = 14 * 24 * 3600


@pytest.mark.parametrize("service", ["postfix", "dovecot", "rspamd", "redis-server"])
def test_service_enabled_and_running(host, cluster, service):
    """Except that on a Debian 13 pair Pacemaker, not systemd, starts Postfix and Dovecot where it
    mounted the mailboxes: enabled, they would start at boot on either host."""
    by_pacemaker = service in CLUSTERED and cluster.mailboxes_on_drbd(host.backend.hostname)
    assert host.service(service).is_enabled != by_pacemaker
    assert host.service(service).is_running


@pytest.mark.parametrize("service", ["postfix", "dovecot"])
def test_services_on_the_hosts_address_start_once_the_network_is_up(host, postfix_unit, service):
    """At boot they wait for the host's address: on a Vagrant VM, Dovecot failed to start
    when systemd-networkd had not yet configured it. Asked of the unit that runs Postfix's
    instance."""
    unit = postfix_unit if service == "postfix" else service
    shown = host.check_output(f"systemctl show -p Wants -p After {unit}").splitlines()
    shown = dict(line.split("=", 1) for line in shown)
    assert "network-online.target" in shown["Wants"].split()
    assert "network-online.target" in shown["After"].split()


@pytest.mark.parametrize("port", TLS_PORTS)
def test_mail_ports_listen_for_the_lb_hosts_and_on_loopback(host, cluster, port):
    address = cluster.hosts[host.backend.hostname].address
    assert host.socket(f"tcp://{address}:{port}").is_listening
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_postfix_is_no_open_relay_and_speaks_modern_tls(host):
    settings = dict(line.partition(" =")[::2] for line in host.check_output("postconf -n").splitlines())
    settings = {key: value.strip() for key, value in settings.items()}
    assert settings["smtpd_relay_restrictions"].endswith("reject_unauth_destination")
    assert settings["smtpd_tls_protocols"] == settings["smtpd_tls_mandatory_protocols"] == ">=TLSv1.2"
    assert settings["smtpd_tls_auth_only"] == "yes"
    assert settings["mynetworks"] == "127.0.0.0/8 [::1]/128"


@pytest.mark.parametrize("port", TLS_PORTS)
def test_certificate_served_names_the_host_and_lasts(host, cluster, port):
    starttls = f"-starttls {TLS_PORTS[port]}" if TLS_PORTS[port] else ""
    name = host.backend.hostname
    served = host.check_output(
        f"openssl s_client -connect 127.0.0.1:{port} {starttls} -servername {cluster.host_fqdn(name)} "
        "</dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName -checkend %d" % FOURTEEN_DAYS
    )
    assert f"DNS:{cluster.host_fqdn(name)}" in served and f"DNS:{cluster.cluster.mail_hostname}" in served
    assert "will not expire" in served


@pytest.mark.parametrize("port", TLS_PORTS)
def test_tls_follows_the_servers_cipher_order(host, port):
    assert negotiated_cipher(host, "127.0.0.1", port, TLS_PORTS[port]).endswith("AES128-GCM-SHA256")


def test_secrets_are_private(host, cluster):
    users = host.file("/etc/dovecot/users")
    assert users.mode == 0o640 and users.user == "root" and users.group == "dovecot"
    for domain in cluster.domains:
        key = host.file(f"/var/lib/rspamd/dkim/{domain.name}.{domain.dkim_selector}.key")
        assert key.mode == 0o600 and key.user == "_rspamd"
    assert host.file("/var/lib/mailstack/staged").mode == 0o700


def test_postfix_passes_mail_through_rspamd(host):
    assert host.check_output("postconf -h smtpd_milters") == f"unix:{MILTER_SOCKET}"
    assert host.socket(f"unix://{MILTER_SOCKET}").is_listening


@pytest.mark.parametrize("port", TLS_PORTS)
def test_certificate_chains_to_a_trusted_root(host, cluster, trusted_roots, port):
    name = cluster.host_fqdn(host.backend.hostname)
    starttls = f"-starttls {TLS_PORTS[port]}" if TLS_PORTS[port] else ""
    command = (
        f"openssl s_client -connect 127.0.0.1:{port} {starttls} -servername {name} -verify_hostname {name}"
        " -verify_return_error -CApath /etc/ssl/certs"
    )
    if trusted_roots:
        command += f" -CAfile <(printf %s {shlex.quote(trusted_roots)})"
    result = host.run(f"bash -c {shlex.quote(command + ' </dev/null')}")
    assert result.rc == 0 and "Verify return code: 0 (ok)" in result.stdout, result.stderr[-500:]


def test_dovecot_and_the_kernel_hold_the_imap_sessions_configured(host, cluster):
    """High-performance login processes, and an inotify instance per session: without them
    Dovecot holds 100 IMAPS sessions, or none hibernates (docs/capacity.md)."""
    settings = host.check_output("doveconf -h service/imap-login/client_limit service/imap/process_limit").split()
    assert settings == [str(capacity.LOGIN_CLIENTS), str(capacity.awake(cluster))]
    instances = int(host.file("/proc/sys/fs/inotify/max_user_instances").content_string)
    assert instances >= capacity.inotify_instances(cluster)
