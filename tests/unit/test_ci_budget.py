"""CI's hour: the costly parts run last, and only when the run's own pace says they end in time."""

import time

import pytest

from tests.conftest import pytest_collection_modifyitems
from tests.support import CI_HOUR, skip_unless_ci_has_time


class Item:
    def __init__(self, name, *marks):
        self.name, self.marks = name, marks
        self.fixturenames = ["lab"] if "lab" in marks else []

    def get_closest_marker(self, mark):
        return mark if mark in self.marks else None


def test_tests_without_hosts_run_first_the_costly_ones_after_the_others_then_teardown_second_lab_staging():
    items = [Item("staging", "staging"), Item("small", "second_lab"), Item("zfs", "lab", "costly"),
             Item("down", "lab", "teardown"), Item("mail", "lab"), Item("unit")]
    pytest_collection_modifyitems(items)
    assert [item.name for item in items] == ["unit", "mail", "zfs", "down", "small", "staging"]


def reached_after(monkeypatch, minutes: float) -> None:
    monkeypatch.setenv("MAILSTACK_CI_STARTED", str(int(time.time() - minutes * 60)))


def test_a_part_that_ends_within_the_hour_at_this_pace_runs(monkeypatch):
    reached_after(monkeypatch, CI_HOUR / 60 / 1.5 - 1)
    skip_unless_ci_has_time(0.5, "the part")


def test_a_part_that_would_end_past_the_hour_at_this_pace_is_skipped_saying_so(monkeypatch):
    reached_after(monkeypatch, CI_HOUR / 60 / 1.5 + 1)
    with pytest.raises(pytest.skip.Exception, match="the part not run: CI reached it after 40 min"
                                                      " and at this pace it would take about 20 more"):
        skip_unless_ci_has_time(0.5, "the part")


def test_by_hand_everything_runs(monkeypatch):
    monkeypatch.delenv("MAILSTACK_CI_STARTED", raising=False)
    skip_unless_ci_has_time(100, "the part")
