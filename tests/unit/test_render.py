"""Every file of every host of every example renders, and the component's own tool accepts it."""

import subprocess
from pathlib import Path

import pytest

from mailstack.components import components_for
from mailstack.inventory import load_for
from mailstack.lab import Lab
from mailstack.render import render_host

PROJECT = Path(__file__).resolve().parents[2]


def test_rendered_files_pass_their_checkers(example_inventory, tmp_path):
    config = load_for(example_inventory)
    if config.lab:
        Lab(config).make_secrets()  # as `mailstack lab up` does; files only, no hosts
    for host_name in config.hosts:
        root = tmp_path / host_name
        written = render_host(config, host_name, root)
        assert written, host_name
        for component in components_for(config, host_name):
            if component.check:
                result = subprocess.run(
                    component.check.format(root=root), shell=True, capture_output=True, text=True
                )
                assert result.returncode == 0, f"{host_name} {component.name}: {result.stderr}"


def test_a_broken_file_fails_its_checker(tmp_path):
    from mailstack.components import component

    apt = tmp_path / "etc/apt/apt.conf.d/90mailstack"
    apt.parent.mkdir(parents=True)
    apt.write_text('APT::Install-Recommends "false\n')
    result = subprocess.run(component("base").check.format(root=tmp_path), shell=True, capture_output=True)
    assert result.returncode != 0


@pytest.mark.parametrize("host_name", ["mx1", "lb1"])
def test_render_cli_writes_the_files(host_name, tmp_path):
    from mailstack.cli import main

    inventory = str(PROJECT / "inventories/prod.py")
    assert main(["render", "--inventory", inventory, "--host", host_name, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "etc/apt/apt.conf.d/90mailstack").is_file()
