"""The local lab itself: real hosts, DNS with TSIG updates, an ACME CA, a real kernel, a clean teardown.

Runs as root on a machine that can host the lab; the teardown test, which the session
runs last, takes the lab down (when this session brought it up) and checks that nothing is
left behind.
"""

import json
import platform
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest

from tests.support import LAB_INVENTORY, PROJECT, PYINFRA, changes, deploy, ssh

pytestmark = pytest.mark.lab


def test_every_host_answers_ssh_and_pyinfra_gathers_facts(lab):
    result = subprocess.run(
        [PYINFRA, "-y", "--json", str(LAB_INVENTORY), "fact", "server.Hostname"],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    )
    hostnames = json.loads(result.stdout)["server.Hostname"]
    assert hostnames == {name: name for name in lab.config.hosts}


def test_status_shows_every_host_up(lab):
    assert {row["host"]: (row["state"], row["ssh"]) for row in lab.status()} == {
        name: ("up", "ready") for name in lab.config.hosts
    }


def test_a_second_deploy_changes_nothing(lab):
    assert changes(deploy()) == {}


def test_verify_summarises_each_host_it_checks(lab):
    """Two hosts are enough to prove the summary; the whole suite runs in tests/infra."""
    chosen = ["ns1", "out1"]
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "verify", "--inventory", str(LAB_INVENTORY),
         *(option for name in chosen for option in ("--host", name))],
        cwd=PROJECT, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.rstrip("\n").rpartition("\n\n")[2].splitlines()  # after pytest's own output
    assert [line.split()[0] for line in summary] == chosen, result.stdout[-3000:]
    assert all(line.split()[2] == "ok" and " 0 failed" in line for line in summary), summary


def test_login_proves_a_round_trip_on_every_mx_host(lab):
    login = [sys.executable, "-m", "mailstack.cli", "lab", "login"]
    result = subprocess.run(login, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trips = [line for line in result.stdout.splitlines() if "round trip alice -> bob took" in line]
    assert len(trips) == len(lab.config.hosts_in("mx"))


def test_ns1_answers_for_the_lab_zone(lab):
    name = f"mx1.{lab.config.domains[0].name}"
    answer = dns.query.udp(dns.message.make_query(name, "A"), str(lab.config.dns.server), timeout=5)
    assert [str(rr) for rrset in answer.answer for rr in rrset] == [str(lab.config.hosts["mx1"].address)]


def test_ns1_accepts_a_tsig_signed_update(lab):
    dns_settings = lab.config.dns
    zone = lab.config.domains[0].name
    keyring = dns.tsigkeyring.from_text(
        {dns_settings.tsig_key_name: lab.config.path(dns_settings.tsig_secret_file).read_text().strip()}
    )
    for attempt in range(5):  # each update answered at once, as soon as it is acknowledged
        update = dns.update.Update(zone, keyring=keyring, keyalgorithm=dns_settings.tsig_algorithm)
        update.replace("lab-test", 60, "TXT", f'"updated {attempt}"')
        assert dns.query.tcp(update, str(dns_settings.server), timeout=5).rcode() == dns.rcode.NOERROR
        query = dns.message.make_query(f"lab-test.{zone}", "TXT")
        assert f'"updated {attempt}"' in dns.query.udp(query, str(dns_settings.server), timeout=5).to_text()

    unsigned = dns.update.Update(zone)
    unsigned.replace("lab-test", 60, "TXT", '"forged"')
    assert dns.query.tcp(unsigned, str(dns_settings.server), timeout=5).rcode() == dns.rcode.REFUSED


def test_pebble_is_reachable_over_https_from_mx1_with_the_lab_ca(lab):
    url = f"https://ns1.{lab.config.domains[0].name}:14000/dir"
    fetch = f"import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"
    directory = ssh(lab, "mx1", f'python3 -c "{fetch}"')
    assert "newOrder" in json.loads(directory)


def test_store1_runs_a_real_kernel_with_its_extra_disks(lab):
    """The disks' contents belong to the storage deploy and tests (tests/lab/test_storage.py)."""
    kernel = ssh(lab, "store1", "uname -r").strip()
    assert kernel.endswith("-cloud-amd64") and kernel != platform.release()
    disks = json.loads(ssh(lab, "store1", "lsblk --json -b -o NAME,TYPE,SIZE"))
    extra = [d for d in disks["blockdevices"] if d["type"] == "disk" and d["name"] != "vda"]
    assert len(extra) == lab.settings.vm_disks == 6
    assert {disk["size"] for disk in extra} == {lab.settings.vm_disk_size}


def test_lab_hosts_have_no_route_out(lab):
    for host in ("mx1", "store1"):
        assert "default" not in ssh(lab, host, "ip route")


@pytest.fixture
def network_beyond_the_lab():
    """A network this machine routes to (a veth pair), as it would route to the Internet."""
    run = lambda *args: subprocess.run(["ip", *args], check=True)  # noqa: E731
    run("link", "add", "msprobe", "type", "veth", "peer", "name", "msprobe-peer")
    try:
        run("addr", "add", "198.51.100.1/24", "dev", "msprobe")
        for link in ("msprobe", "msprobe-peer"):
            run("link", "set", link, "up")
        yield "198.51.100.2"
    finally:
        run("link", "del", "msprobe")


def test_this_machine_forwards_nothing_from_the_lab(lab, network_beyond_the_lab):
    """Asks the kernel how it would route a lab host's packet; holds even with ip_forward on."""
    mx1 = str(lab.config.hosts["mx1"].address)
    route = subprocess.run(
        ["ip", "route", "get", network_beyond_the_lab, "from", mx1, "iif", lab.settings.bridge],
        capture_output=True, text=True,
    )
    assert route.returncode != 0, route.stdout


@pytest.mark.teardown
def test_down_leaves_nothing_behind(lab):
    """Runs last: takes the lab down (only if this session brought it up) and looks for leftovers."""
    if not lab.started_here:
        pytest.skip("the lab was already running before the tests; it stays up")
    lab.down()
    lab.down()  # safe to run twice
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == ""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert lab.settings.bridge not in links and "ve-" not in links and "vt-" not in links
    assert "/var/lib/mailstack-lab" not in Path("/proc/mounts").read_text()
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/mailstack-lab/*") if p.is_dir()]
    for marker in ("systemd-nspawn", "qemu-system-x86_64", "tinyproxy"):
        assert subprocess.run(["pgrep", "-f", f"^{marker}"], capture_output=True).returncode == 1, marker
