"""Random and mutated configurations: the loader returns a model or a ConfigError, nothing else."""

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstack.config import Config, ConfigError
from mailstack.config.loader import load_text

EXAMPLES = [Path(__file__).parent / "fixtures" / "minimal.yml", *Path(__file__).parents[2].glob("inventories/*.yml")]
VALID = [yaml.safe_load(path.read_text()) for path in EXAMPLES]
SOURCE = Path("fuzz.yml")

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


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configurations(data):
    _outcome(yaml.safe_dump(data))


@settings(max_examples=200)
@given(values)
def test_random_documents(data):
    _outcome(yaml.safe_dump(data))


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_random_text(text):
    _outcome(text)
