"""Shared test helpers: the example inventories, and the local lab for the live tiers."""

import multiprocessing
import os
import signal
import sys
import traceback
from pathlib import Path

import pytest

from mailstack import dns
from mailstack.inventory import load_for
from mailstack.lab import Lab
from mailstack.lab.system import STATE, LabError
from tests.support import EXAMPLES, LAB_INVENTORY, deploy

DEPLOYED = "MAILSTACK_LAB_DEPLOYED"
"""The inventory whose lab this session deployed, for the test runs its tests start."""
BRING_UP_LOG = STATE / "bring-up.log"
BESIDE = 10
"""How much nicer the tests that run beside the bring-up are: they take only the CPU it leaves."""


def pytest_collection_modifyitems(items):
    """Tests that need no host run first, while the lab comes up beside them (``BringUp``);
    then those on hosts; then those marked ``costly`` (long under TCG, left out by CI when short
    of time), so that nothing waits behind them; then those marked ``teardown``, which take the
    lab down; then the ``second_lab`` ones, which bring up a lab of their own; then the staging
    ones, which boot their VMs once every lab is down."""
    last = ("costly", "teardown", "second_lab", "staging")

    def place(item) -> int:
        marked = next((at for at, marker in enumerate(last, 2) if item.get_closest_marker(marker)), 0)
        return marked or int(_on_hosts(item))
    items.sort(key=place)


def _on_hosts(item) -> bool:
    """Whether a test runs on hosts: the lab's, or in tests/infra those of ``--inventory``."""
    return bool({"lab", "deployed"} & set(item.fixturenames))


def pytest_addoption(parser):
    parser.addoption("--inventory", help="inventory whose hosts the live tiers (tests/infra) check")
    parser.addoption("--limit", help="tests/infra: check only these hosts of the inventory (comma-separated)")


@pytest.fixture(params=EXAMPLES, ids=lambda path: path.stem)
def example_inventory(request) -> Path:
    return request.param


def lab_inventory(config) -> Path:
    """The lab a session brings up: of ``--inventory`` when that is a lab's (as
    inventories/lab-drbd.py), else the lab's own."""
    given = config.getoption("--inventory")
    return Path(given).resolve() if given and load_for(given).lab else LAB_INVENTORY


def _wants_the_lab(session) -> bool:
    """Whether a test of the session runs on the lab: a lab test, or tests/infra on its inventory."""
    given = session.config.getoption("--inventory")
    infra_on_a_lab = bool(given) and load_for(given).lab is not None
    return any("lab" in item.fixturenames or (infra_on_a_lab and "deployed" in item.fixturenames)
               for item in session.items)


class BringUp:
    """The lab brought up and deployed in a process of its own, started with the session, while
    the tests that need no host run first: they take the CPU that the deploy leaves while it
    waits on the TCG guest. A process, not a thread: those tests patch module attributes that
    the bring-up uses. A session takes down what it started, also when no test got to the lab
    (``-x``, Ctrl-C); a lab that was already running is reused and left running."""

    def __init__(self, inventory: Path):
        self.inventory = inventory
        self.lab = Lab(load_for(inventory))
        self.lab.inventory = inventory
        self.lab.started_here = not all(row["state"] == "up" for row in self.lab.status())  # slow SSH still runs
        self.deploying = os.environ.get(DEPLOYED) != str(inventory)
        self.said, told = multiprocessing.Pipe(duplex=False)
        self.process = multiprocessing.get_context("fork").Process(target=_bring_up, args=(self, told))
        self.process.start()
        told.close()  # the process's end: a process that dies unheard is then an EOFError here
        self.niceness = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, self.niceness + BESIDE)

    def ready(self) -> Lab:
        """The lab once it is up and deployed; the bring-up's error if it failed."""
        try:
            failure = self.said.recv()
        except EOFError:
            failure = "its process ended without saying how"
        self.process.join()
        os.setpriority(os.PRIO_PROCESS, 0, self.niceness)
        if failure:
            raise LabError(f"the lab's bring-up failed (its output: {BRING_UP_LOG}):\n{failure}")
        os.environ[DEPLOYED] = str(self.inventory)
        return self.lab

    def close(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.join()
        os.setpriority(os.PRIO_PROCESS, 0, self.niceness)
        if self.deploying:
            os.environ.pop(DEPLOYED, None)
        if self.lab.started_here:
            self.lab.down()


def _bring_up(bring_up: BringUp, told) -> None:
    """In the bring-up's process: its output goes to ``BRING_UP_LOG``, its outcome to ``told``."""
    BRING_UP_LOG.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout = sys.stderr = log = open(BRING_UP_LOG, "w", buffering=1)
    for output in (1, 2):  # the commands it runs write there too
        os.dup2(log.fileno(), output)
    signal.signal(signal.SIGTERM, _stop)
    try:
        bring_up.lab.up()
        if bring_up.deploying:
            deploy(bring_up.inventory)
            dns.push(bring_up.lab.config)
        told.send("")
    except BaseException:
        told.send(traceback.format_exc())


def _stop(signal_number, frame) -> None:
    """The session ended before the lab was ready (SIGINT may be ignored in CI's background jobs)."""
    raise SystemExit("stopped: the session ended before the lab was ready")  # Lab.up stops what it started


@pytest.fixture(scope="session", autouse=True)
def background_lab(request):
    """The lab's bring-up, started with the session when a test will run on the lab."""
    if os.geteuid() != 0 or not _wants_the_lab(request.session):
        yield None
        return
    bring_up = BringUp(lab_inventory(request.config))
    try:
        yield bring_up
    finally:
        bring_up.close()


@pytest.fixture(scope="session")
def lab(background_lab):
    """The local lab, up and deployed (``lab_inventory``). A run that a test of this session
    starts (``mailstack verify``) finds it deployed already."""
    if background_lab is None:
        pytest.skip("the lab needs root")
    return background_lab.ready()
