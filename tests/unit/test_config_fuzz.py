"""Random and mutated configurations: the loader returns a model or a ConfigError, nothing else."""

import copy
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstack.config import Config, ConfigError
from mailstack.config.loader import load_text

EXAMPLES = [Path(__file__).parent / "fixtures" / "minimal.yml", *Path(__file__).parents[2].glob("inventories/*.yml")]
VALID = [yaml.safe_load(path.read_text()) for path in EXAMPLES]
SOURCE = Path("fuzz.yml")
HANG = timedelta(seconds=5)  # a bound against hangs, far above any real case; not a speed test

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["2G", "2 gigs", "192.0.2.1", "10.0.0.0/33", "a@b.example", "@example.com", "lb", "mirror"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | scalars, inner, max_size=4),
    max_leaves=12,
)


def _outcome(text: str) -> None:
    try:
        config = load_text(text, SOURCE)
    except ConfigError as error:
        assert error.problems and all(problem.startswith("fuzz.yml") for problem in error.problems)
    else:
        assert isinstance(config, Config)


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, prefix + (index,))


@st.composite
def mutated(draw):
    data = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        if not path:
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
    return data


@settings(max_examples=300, deadline=HANG, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configurations(data):
    _outcome(yaml.safe_dump(data))


@settings(max_examples=200, deadline=HANG)
@given(values)
def test_random_documents(data):
    _outcome(yaml.safe_dump(data))


@settings(max_examples=200, deadline=HANG)
@given(st.text(max_size=200))
def test_random_text(text):
    _outcome(text)


RICH = yaml.safe_load((Path(__file__).parent / "fixtures" / "minimal.yml").read_text()) | {
    "mail": {"postfix_extra": {"smtpd_banner": "$myhostname ESMTP"}},
    "ssh": {"user": "deploy", "key": "keys/id", "known_hosts": "keys/known_hosts"},
    "dns": {"server": "192.0.2.53", "tsig_key_name": "mailstack", "tsig_secret_file": "tsig.key"},
}
RICH["cluster"]["ntp_servers"] = ["ntp.example.net"]
RICH["hosts"]["mx1"] |= {"groups": ["mx", "storage"], "storage": {"zfs": {
    "vdevs": [{"devices": ["/dev/vdb", "/dev/vdc"]}], "properties": {"compression": "lz4", "org.example:note": "x"},
    "datasets": [{"name": "vmail", "mount_point": "/var/vmail"}],
}}}
HOSTILE = [
    "a\nb", "a\rb", "a\u2028b", "a\x00b", "a\tb", "a:b", "a'b", 'a"b', "$(touch x)", "`id`", "a;b", "a b", "a#b",
    "\u212aelvin", "\ufb01le", "\uff11\uff12", "-rf", "*x", "&a", "!x", "%x", "a,b", "a=b", "{x}", "a\\b", "x\n  y = z",
]
hostile_text = st.one_of(st.text(max_size=16), st.sampled_from(HOSTILE),
                         st.integers(min_value=-(2**70), max_value=2**70).map(str))
hostile_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 65536, True, 1.5, "1e3", "0x10", "٣"])
)


def _leaves(data, prefix=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, prefix + (index,))
    else:
        yield prefix, data


def _structure(config, tmp: Path) -> dict[str, int]:
    """The line count of every file every host of ``config`` receives, and the number of
    settings Postfix itself reads from each main.cf."""
    from mailstack.render import render_host

    found = {}
    for host in config.hosts:
        for path in render_host(config, host, tmp / host):
            found[str(path.relative_to(tmp))] = len(path.read_text().splitlines())
    for main_cf in tmp.glob("*/etc/postfix/main.cf"):
        os.utime(main_cf, (0, 0))  # Postfix waits up to 2 s before it reads a main.cf changed this instant
        settings = subprocess.run(["postconf", "-c", str(main_cf.parent), "-n"], capture_output=True, text=True)
        found[f"{main_cf.relative_to(tmp)}: settings"] = len(settings.stdout.splitlines())
    return found


@pytest.fixture(scope="session")
def rich_structure(tmp_path_factory) -> dict[str, int]:
    folder = tmp_path_factory.mktemp("rich")
    return _structure(load_text(yaml.safe_dump(RICH), folder / "x.yml"), folder / "before")


def _try(document: dict, folder: Path, rich_structure: dict[str, int]) -> None:
    """One-line errors, or a valid model whose files have the lines the original's have (a
    value never adds a line) and whose passwd-file keeps its fields."""
    try:
        config = load_text(yaml.safe_dump(document), folder / "x.yml")
    except ConfigError as error:
        assert error.problems and all("\n" not in problem for problem in error.problems)
        return
    assert _structure(config, folder / "after") == rich_structure
    for users in (folder / "after").glob("*/etc/dovecot/users"):
        assert all(line.count(":") == 7 for line in users.read_text().splitlines())


def _with(path: tuple, value) -> dict:
    document = copy.deepcopy(RICH)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return document


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_each_hostile_text_in_each_text_field(value, tmp_path, rich_structure):
    """Every text field of a rich configuration, with each hostile value."""
    for index, (path, original) in enumerate(_leaves(RICH)):
        if isinstance(original, str):
            _try(_with(path, value), tmp_path / str(index), rich_structure)


@settings(max_examples=150, deadline=HANG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_hostile_values(data, tmp_path_factory, rich_structure):
    """Any field, text or number, with random hostile values, each case bounded in time."""
    path, original = data.draw(st.sampled_from(list(_leaves(RICH))))
    value = data.draw(hostile_number if isinstance(original, int) else hostile_text)
    _try(_with(path, value), tmp_path_factory.mktemp("hostile"), rich_structure)
