"""testinfra against any inventory: ``pytest tests/infra --inventory inventories/prod.py``.

Each test module names the groups it checks in ``GROUPS`` (none: every host); the
``host`` fixture is then parametrised with those hosts of the inventory. Without
``--inventory`` the tier is skipped, with that reason.
"""

import pytest
import testinfra

from mailstack.inventory import load_for
from mailstack.ssh import ssh_config


@pytest.fixture(scope="session")
def cluster(request):
    inventory = request.config.getoption("--inventory")
    if not inventory:
        pytest.skip("no --inventory given: tests/infra checks deployed hosts")
    return load_for(inventory)


def pytest_generate_tests(metafunc):
    if "host" not in metafunc.fixturenames:
        return
    inventory = metafunc.config.getoption("--inventory")
    if not inventory:
        metafunc.parametrize("host", [pytest.param(None, marks=pytest.mark.skip("no --inventory given"))])
        return
    config = load_for(inventory)
    groups = getattr(metafunc.module, "GROUPS", None)
    names = [name for name, host in config.hosts.items() if not groups or set(groups) & set(host.groups)]
    ssh_file = metafunc.config.cache.mkdir("mailstack") / f"{config.cluster.name}.ssh_config"
    ssh_file.write_text(ssh_config(config))
    hosts = [testinfra.get_host(f"ssh://{name}", ssh_config=str(ssh_file)) for name in names]
    metafunc.parametrize("host", hosts, ids=names, scope="module")
