"""The lab brought up in a process of its own while the tests that need no host run
(tests/conftest.py: ``BringUp``), with a stand-in for the lab."""

import os
import time

import pytest

from mailstack.lab.system import LabError
from tests import conftest


class StandInLab:
    """What ``BringUp`` asks of a lab: ``up`` in its process; ``status`` and ``down`` here."""

    running = False

    def __init__(self, config):
        self.downs = 0

    def status(self):
        return [{"state": "up" if self.running else "down"}]

    def down(self):
        self.downs += 1


@pytest.fixture
def bring_up(monkeypatch, tmp_path):
    """A ``BringUp`` whose lab comes up as ``up`` says; no deploy (the inventory's is on record)."""
    if os.geteuid() != 0:
        pytest.skip("a bring-up gives the session its priority back, which needs root")
    inventory = tmp_path / "lab.py"
    monkeypatch.setattr(conftest, "BRING_UP_LOG", tmp_path / "bring-up.log")
    monkeypatch.setattr(conftest, "load_for", lambda inventory: None)
    monkeypatch.setenv(conftest.DEPLOYED, str(inventory))

    def start(up, running=False):
        monkeypatch.setattr(conftest, "Lab", type("Lab", (StandInLab,), {"up": up, "running": running}))
        return conftest.BringUp(inventory)
    return start


def test_a_lab_that_came_up_is_handed_over_and_taken_down_by_the_session_that_started_it(bring_up):
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    started = bring_up(lambda lab: print("--> starting mx1"))
    assert os.getpriority(os.PRIO_PROCESS, 0) == min(niceness + conftest.BESIDE, 19)  # the tests beside it yield
    lab = started.ready()
    assert os.getpriority(os.PRIO_PROCESS, 0) == niceness
    started.close()
    assert lab.downs == 1
    assert conftest.BRING_UP_LOG.read_text() == "--> starting mx1\n"


def test_a_lab_that_was_running_is_left_running(bring_up):
    started = bring_up(lambda lab: None, running=True)
    started.ready()
    started.close()
    assert started.lab.downs == 0


def test_a_failed_bring_up_is_the_error_of_every_test_on_the_lab_and_names_its_output(bring_up):
    def up(lab):
        raise LabError("mx1: no SSH after 300 s")
    started = bring_up(up)
    with pytest.raises(LabError, match=f"bring-up failed \\(its output: {conftest.BRING_UP_LOG}\\)"
                                       f"(.|\n)*mx1: no SSH after 300 s"):
        started.ready()
    started.close()


def test_a_bring_up_that_dies_without_a_word_says_so(bring_up):
    started = bring_up(lambda lab: os._exit(9))
    with pytest.raises(LabError, match="ended without saying how"):
        started.ready()
    started.close()


def test_a_session_that_ends_before_the_lab_is_ready_stops_the_bring_up_then_takes_the_lab_down(bring_up):
    def up(lab):
        print("--> waiting for SSH")
        time.sleep(120)
    started = bring_up(up)
    while not conftest.BRING_UP_LOG.exists() or not conftest.BRING_UP_LOG.read_text():
        time.sleep(0.1)
    started.close()
    assert "stopped: the session ended before the lab was ready" in started.said.recv()
    assert started.lab.downs == 1
