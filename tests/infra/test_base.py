"""The base component on every host."""

import shlex

import pytest

from mailstack.services import NODE_EXPORTER_PORT


@pytest.fixture
def name(host):
    return host.backend.hostname


def test_hostname_is_the_inventory_name(host, name):
    assert host.check_output("hostname") == name


def test_the_host_runs_its_debian_release(host, name, cluster):
    assert host.system_info.codename == cluster.release_of(name)


def test_every_host_of_the_cluster_resolves_by_its_names(host, cluster):
    """Replication and the checks between hosts name their peers; no DNS is needed for that.
    One command asks for every name: each command is a round trip, a second on a TCG guest."""
    wanted = {alias: str(settings.address) for name, settings in cluster.hosts.items()
              for alias in (cluster.host_fqdn(name), name)}
    answers = host.check_output(f"for name in {' '.join(map(shlex.quote, wanted))};"
                                ' do echo "$name" $(getent ahostsv4 "$name" | cut -d " " -f 1); done')
    resolved = {alias: addresses for alias, *addresses in map(str.split, answers.splitlines())}
    assert {alias: resolved.get(alias) for alias, address in wanted.items()
            if address not in resolved.get(alias, [])} == {}


def test_time_zone(host, cluster):
    assert host.check_output("readlink /etc/localtime") == f"/usr/share/zoneinfo/{cluster.cluster.timezone}"
    assert host.file("/etc/timezone").content_string.strip() == cluster.cluster.timezone


def test_apt_settings(host, cluster):
    settings = host.file("/etc/apt/apt.conf.d/90mailstack")
    assert settings.mode == 0o644 and settings.user == "root"
    if cluster.cluster.apt_proxy:
        assert settings.contains(cluster.cluster.apt_proxy)


def test_base_packages(host):
    for package in ("ca-certificates", "openssl"):
        assert host.package(package).is_installed


def test_no_unit_has_failed(host):
    """A unit that failed (a service that would not start, a timer's job) is a fault nobody is
    told of; the deploys leave none."""
    assert host.check_output("systemctl list-units --state=failed --no-legend --plain") == ""


def test_clock_is_synchronised_outside_containers(host):
    if host.run("systemd-detect-virt --container --quiet").rc == 0:
        pytest.skip("a container shares its machine's clock")
    assert host.service("systemd-timesyncd").is_running


def test_node_exporter_serves_the_mon_hosts_on_the_host_address_only(host, name, cluster):
    if not cluster.hosts_in("mon"):
        pytest.skip("no mon host: nothing scrapes this host")
    assert host.service("prometheus-node-exporter").is_running
    listening = host.check_output(f"ss -Hltn 'sport = :{NODE_EXPORTER_PORT}'")
    assert f"{cluster.hosts[name].address}:{NODE_EXPORTER_PORT}" in listening and "*:" not in listening
