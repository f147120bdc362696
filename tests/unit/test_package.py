"""`pip install .` (not editable) into a fresh venv gives a working `mailstack`: it validates and
renders the example inventories from outside the checkout, templates and all."""

import shutil
import subprocess
import sys

from tests.support import PROJECT


def test_installed_package_renders_the_examples(tmp_path):
    source = tmp_path / "source"
    for name in subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True,
                               check=True).stdout.splitlines():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, source / name, follow_symlinks=False)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin/pip", "install", "-q", "--disable-pip-version-check", source], check=True)
    shutil.rmtree(source)  # nothing may come from the checkout's files any more

    for example in ("prod", "staging", "lab"):
        inventory = PROJECT / "inventories" / f"{example}.py"
        for command in (["validate"], ["render", "--out", tmp_path / example]):
            result = subprocess.run([venv / "bin/mailstack", *command, "--inventory", inventory],
                                    cwd=tmp_path, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
    assert (tmp_path / "prod/mx1/etc/postfix/main.cf").read_text().startswith("# Managed by mailstack")
    read = "from mailstack.inventory import SSH_CLIENT_CONFIG; print(SSH_CLIENT_CONFIG.read_text())"
    ssh_settings = subprocess.run([venv / "bin/python", "-c", read], cwd=tmp_path, capture_output=True, text=True)
    assert "ServerAliveInterval" in ssh_settings.stdout, ssh_settings.stderr
