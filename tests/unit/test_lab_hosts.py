"""What the lab says of a host that does not come up: the last lines of its console, readable."""

from types import SimpleNamespace

from mailstack.lab.hosts import console_tail


def test_the_consoles_tail_is_without_the_terminals_control_sequences(tmp_path):
    console = tmp_path / "console.log"
    console.write_bytes(b"[\x1b[0;32m  OK  \x1b[0m] Reached target multi-user.target\r\n"
                        b"\x1b]104\x07\x1b[?7h\x1b[6n\x1b[32766;32766H\r\nstore1 login: ")
    tail = console_tail(SimpleNamespace(console=console), lines=2)
    assert tail == "[  OK  ] Reached target multi-user.target / store1 login:"


def test_a_host_that_wrote_nothing_says_so(tmp_path):
    assert console_tail(SimpleNamespace(console=tmp_path / "console.log")) == "(nothing)"
