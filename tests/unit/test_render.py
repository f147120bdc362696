"""Every component is complete and every file of every example host renders and passes its
component's own checker; rendering touches nothing but its output folder."""

import ast
import shutil
import subprocess

import pytest

from deploys.drbd import DRBD
from deploys.lab_services import LAB_SERVICES
from deploys.mail_cluster import CLUSTER
from deploys.pacemaker import PACEMAKER
from mailstack import secrets, validators
from mailstack.component import Component, Target
from mailstack.config import RELEASES, load
from mailstack.config.checks import cross_check
from mailstack.inventory import load_for
from mailstack.render import COMPONENTS, check_host, render_host
from tests.support import PROJECT

PRODUCT = ["mailstack", "deploys", "operations", "facts"]


@pytest.mark.parametrize("release", RELEASES)
def test_rendered_files_pass_their_checkers(example_inventory, release, tmp_path):
    """Each host's files as they are on each Debian release, checked by that release's tools."""
    config = as_release(load_for(example_inventory), release)
    secrets.make(config)  # as a deploy's preflight does
    for host_name in config.hosts:
        root = tmp_path / host_name
        assert render_host(config, host_name, root), host_name
        assert check_host(config, host_name, root) == {}, host_name


def as_release(config, release: str):
    """``config`` with every host on ``release``; an mx pair that may not run it (on Debian 13
    a pair replicates by DRBD over mdadm arrays, which the lab's and staging's pairs lack)
    keeps its own, and a pair on Debian 12 no quorum host."""
    mx = set(config.hosts_in("mx"))
    for name, host in config.hosts.items():
        config.hosts[name] = host.model_copy(update={"release": release})
    if cross_check(config):
        for name in mx:
            config.hosts[name] = config.hosts[name].model_copy(update={"release": "bookworm"})
    if config.mailbox_replication != "drbd":  # a dsync pair has no third vote
        for name, host in config.hosts.items():
            groups = [group for group in host.groups if group != "quorum"]
            config.hosts[name] = host.model_copy(update={"groups": groups})
    assert not cross_check(config)
    return config


def test_a_failed_check_never_shows_a_secret(monkeypatch, tmp_path):
    """A checker that quotes the line it refuses, secret and all, is reported without it."""
    config = load_for(PROJECT / "inventories" / "prod.py")
    secrets.make(config)
    password = (config.secrets_dir / "doveadm.pass").read_text().strip()
    said = f"doveconf: Fatal: line 3: doveadm_password = {password}: bad"
    monkeypatch.setattr(validators, "check", lambda *_: subprocess.CompletedProcess([], 1, "", said))
    failures = check_host(config, config.hosts_in("mx")[0], tmp_path)
    assert failures and all(password not in text and secrets.HIDDEN in text for text in failures.values())


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda component: component.name)
def test_every_component_is_complete(component, tmp_path):
    """Declared in its own module with its deploy, its templates exist, and its checker runs
    on its files (for some host of an example that gets it)."""
    module = component.deploy.__module__
    assert module == f"deploys.{component.name}"
    assert any(value is component for value in vars(__import__(module, fromlist=["_"])).values())
    hosts = [
        (config, name) for config in map(load_for, sorted(PROJECT.glob("inventories/*.py")))
        for name in config.hosts if component.applies_to(config, name)
    ]
    assert hosts, f"no example host gets {component.name}"
    config, host_name = hosts[0]
    secrets.make(config)
    rendered = component.render(Target(config, host_name, review=True))  # without a lab's known_hosts
    for managed, content in rendered.items():
        path = tmp_path / managed.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if component.check:
        result = validators.check(component, config, host_name, tmp_path)
        assert result.returncode == 0, result.stderr


def test_one_order_lists_every_component_once():
    parts = [part for part in CLUSTER if isinstance(part, Component)]
    assert len(parts) == len(set(parts))
    assert set(COMPONENTS) == set(parts) | set(LAB_SERVICES)
    found = {path.stem for path in (PROJECT / "deploys").glob("*.py")} - {"__init__", "common", "mail_cluster",
                                                                           "lab_services"}
    assert found == {component.name for component in COMPONENTS}, "a deploys/ module that no list names"


def test_nothing_refers_to_a_component_by_a_string_name():
    """A component is passed as itself: no code compares a deploy's ``__name__``, passes a
    ``component_name`` or builds a ``Component`` with a name of its own."""
    names = {component.name for component in COMPONENTS}
    for path in [file for folder in PRODUCT for file in (PROJECT / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                compared = [part for part in [node.left, *node.comparators] if isinstance(part, ast.Attribute)]
                assert "__name__" not in [part.attr for part in compared], f"{path}: compares a __name__"
            if isinstance(node, ast.Call):
                assert "component_name" not in [keyword.arg for keyword in node.keywords], path
                if getattr(node.func, "id", None) == "Component":
                    assert not any(isinstance(arg, ast.Constant) and arg.value in names for arg in node.args), path


def test_render_is_pure(tmp_path):
    """Rendering makes no secret: with none made, each shows as a placeholder and nothing is written
    outside the output folder."""
    settings = (PROJECT / "inventories/staging.yml").read_text()
    (tmp_path / "staging.yml").write_text(settings)
    config = load_for(tmp_path / "staging.yml")
    render_host(config, "lb1", tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "staging.yml"]
    key = (tmp_path / "out/etc/mailstack/tls/privkey.pem").read_text()
    assert key == f"MISSING-SECRET:{config.secrets_dir}/tls/lb1.key\n"


def test_a_check_that_read_a_placeholder_says_which_command_makes_the_secret(tmp_path):
    """Before ``mailstack secrets``, Corosync's check reads the placeholder of its key, too short
    a key: the failure says that the secret is not made yet, and how to make it."""
    shutil.copy(PROJECT / "inventories/prod.yml", tmp_path)
    config = load(tmp_path / "prod.yml")
    render_host(config, "mx1", tmp_path / "out")
    failure = check_host(config, "mx1", tmp_path / "out")["pacemaker"]
    assert failure.endswith("a placeholder for a secret not made yet: make it with `mailstack secrets`)")


def test_a_broken_file_fails_its_checker(tmp_path):
    from deploys.base import BASE

    apt = tmp_path / "etc/apt/apt.conf.d/90mailstack"
    apt.parent.mkdir(parents=True)
    apt.write_text('APT::Install-Recommends "false\n')
    result = subprocess.run(BASE.check.format(root=tmp_path), shell=True, capture_output=True)
    assert result.returncode != 0


def test_a_missing_template_is_named_not_taken_for_an_unwritable_folder(tmp_path, monkeypatch, capsys):
    from jinja2 import FileSystemLoader

    from mailstack.cli import main
    from mailstack.component import TEMPLATE_ENVIRONMENT

    monkeypatch.setattr(TEMPLATE_ENVIRONMENT, "loader", FileSystemLoader(str(tmp_path / "empty")))
    TEMPLATE_ENVIRONMENT.cache.clear()
    inventory = str(PROJECT / "inventories/prod.py")
    assert main(["render", "--inventory", inventory, "--host", "mx1", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.startswith("mailstack render: no template etc/")
    TEMPLATE_ENVIRONMENT.cache.clear()


@pytest.mark.parametrize("host_name", ["mx1", "lb1"])
def test_render_cli_writes_the_files(host_name, tmp_path):
    from mailstack.cli import main

    inventory = str(PROJECT / "inventories/prod.py")
    assert main(["render", "--inventory", inventory, "--host", host_name, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "etc/apt/apt.conf.d/90mailstack").is_file()


def test_the_health_check_interval_paces_haproxy_and_keepalived(tmp_path):
    config = load_for(PROJECT / "inventories/prod.py")
    config = config.model_copy(update={"cluster": config.cluster.model_copy(update={"health_check_interval": 5})})
    render_host(config, "lb1", tmp_path)
    assert " inter 5s fastinter 1250ms downinter 10s " in (tmp_path / "etc/haproxy/haproxy.cfg").read_text()
    assert "    interval 5\n    timeout 6\n" in (tmp_path / "etc/keepalived/keepalived.conf").read_text()
    assert check_host(config, "lb1", tmp_path) == {}


@pytest.mark.parametrize("component, path, damage", [
    (DRBD, "etc/drbd.d/vmail.res", ("ping-int", "ping-interval")),
    (DRBD, "etc/systemd/system/postfix.service.d/mailstack-drbd.conf", ("ConditionPathIsMountPoint=/", "=")),
    (PACEMAKER, "etc/corosync/corosync.conf", ("token: 3000", "token: -1")),
    (PACEMAKER, "etc/mailstack/pacemaker/constraints.xml", ("with-rsc-role", "with-role")),
], ids=lambda value: getattr(value, "name", None) if isinstance(value, Component) else None)
def test_a_broken_file_of_the_debian_13_pair_fails_its_check(component, path, damage, tmp_path):
    """Each file of DRBD and Pacemaker, damaged, fails the check of Debian 13's own tools."""
    config = load_for(PROJECT / "inventories/lab-drbd.py")
    secrets.make(config)
    render_host(config, "mx1", tmp_path)
    assert validators.check(component, config, "mx1", tmp_path).returncode == 0
    damaged = tmp_path / path
    assert damage[0] in damaged.read_text()
    damaged.write_text(damaged.read_text().replace(*damage))
    assert validators.check(component, config, "mx1", tmp_path).returncode != 0
