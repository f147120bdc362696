"""Shared test helpers: where the example inventories are."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(PROJECT.glob("inventories/*.py"))


@pytest.fixture(params=EXAMPLES, ids=lambda path: path.stem)
def example_inventory(request) -> Path:
    return request.param


def pytest_addoption(parser):
    parser.addoption("--inventory", help="inventory whose hosts the live tiers (tests/infra) check")
