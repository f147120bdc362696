"""Shared test helpers: the example inventories, and the local lab for the live tiers."""

import os
from pathlib import Path

import pytest

from tests.support import EXAMPLES, LAB_INVENTORY, deploy

DEPLOYED = "MAILSTACK_LAB_DEPLOYED"
"""The inventory whose lab this session deployed, for the test runs its tests start."""


def pytest_collection_modifyitems(items):
    """Tests marked ``costly`` (long under TCG, left out by CI when short of time) run after the
    others, so that nothing waits behind them; then those marked ``teardown``, which take the lab
    down; then the staging ones, which boot their VMs once the lab is down."""
    last = ("costly", "teardown", "staging")
    items.sort(key=lambda item: next((at for at, marker in enumerate(last, 1) if item.get_closest_marker(marker)), 0))


def pytest_addoption(parser):
    parser.addoption("--inventory", help="inventory whose hosts the live tiers (tests/infra) check")
    parser.addoption("--limit", help="tests/infra: check only these hosts of the inventory (comma-separated)")


@pytest.fixture(params=EXAMPLES, ids=lambda path: path.stem)
def example_inventory(request) -> Path:
    return request.param


@pytest.fixture(scope="session")
def lab(request):
    """The local lab, up and deployed: of ``--inventory`` when that is a lab's (as
    inventories/lab-drbd.py), else the lab's own. It is torn down at the end, even when tests
    fail, if this session started it; a lab that was already running is reused and left running.
    A run that a test of this session starts (``mailstack verify``) finds it deployed already."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    from mailstack import dns
    from mailstack.inventory import load_for
    from mailstack.lab import Lab

    given = request.config.getoption("--inventory")
    inventory = Path(given).resolve() if given and load_for(given).lab else LAB_INVENTORY
    the_lab = Lab(load_for(inventory))
    the_lab.inventory = inventory
    the_lab.started_here = not all(row["state"] == "up" for row in the_lab.status())  # slow SSH is still running
    deployed_here = os.environ.get(DEPLOYED) != str(inventory)
    try:
        the_lab.up()
        if deployed_here:
            deploy(inventory)
            dns.push(the_lab.config)
            os.environ[DEPLOYED] = str(inventory)
        yield the_lab
    finally:
        if deployed_here:
            os.environ.pop(DEPLOYED, None)
        if the_lab.started_here:
            the_lab.down()
