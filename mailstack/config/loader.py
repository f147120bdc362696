"""Reading a configuration file into the model, with errors a user can act on.

Every mistake becomes one line ``FILE:LINE: KEY.PATH: what is wrong``; the loader's
only outcomes are a valid :class:`Config` or a :class:`ConfigError`.
"""

import difflib
import re
import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from .checks import cross_check
from .model import Config

Loc = tuple[str | int, ...]

# Bounds on the file itself, far beyond any real configuration: a YAML alias bomb, deep
# nesting or a number of thousands of digits is refused before it is expanded.
MAX_BYTES = 1 << 20
MAX_ALIASES = 64
MAX_DEPTH = 24
MAX_SCALAR_DIGITS = 64
NUMBER = re.compile(r"[-+]?[0-9][0-9_.:eE+-]*$")



class PlainLoader(yaml.SafeLoader):
    """YAML read as a configuration means it: ``true`` and ``false`` are the only booleans,
    integers are decimal without leading zeros, and nothing is a date (YAML 1.1 reads ``yes``, ``0o17``, ``017``,
    ``1:30`` and ``2001-12-14`` as a boolean, numbers and a date; here they are text, which
    the field then accepts or refuses)."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if not tag.endswith((":bool", ":int", ":timestamp"))]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


PlainLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
PlainLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)

# Values are taken as written, never coerced: what to write instead.
PLAIN_FORMS = {
    "int_type": "must be a whole number, written as digits (such as 150)",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
}


class ConfigError(Exception):
    """A mistake in a configuration file, printed as it is and never with a traceback."""

    def __init__(self, source: Path, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problems))


def load(path: str | Path) -> Config:
    source = Path(path)
    if source.exists() and not source.is_file():  # a FIFO or a device would block or never end
        raise ConfigError(source, [f"{source}: not a regular file"])
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, [f"{source}: cannot read: {getattr(error, 'strerror', None) or error}"]) from None
    return load_text(text, source)


def load_text(text: str, source: Path) -> Config:
    data, lines, duplicates = _parse(text, source)
    if duplicates:
        raise ConfigError(source, [_line(source, lines, loc, "key given twice") for loc in duplicates])
    if not isinstance(data, dict):
        raise ConfigError(source, [f"{source}:1: the file must hold a mapping of settings (cluster:, hosts:, ...)"])
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems = [_line(source, lines, *_explain(e)) for e in error.errors(include_input=False)]
        raise ConfigError(source, problems) from None
    config._source = source.resolve()
    problems = [_line(source, lines, loc, message) for loc, message in cross_check(config)]
    if problems:
        raise ConfigError(source, problems)
    return config


def _parse(text: str, source: Path) -> tuple[object, dict[Loc, int], list[Loc]]:
    """The YAML data, the line of each key path, and key paths given twice in one mapping."""
    try:
        _check_bounds(text, source)
        data = yaml.load(text, Loader=PlainLoader)
        root = yaml.compose(text, Loader=PlainLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, [f"{where}: not valid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError(source, [f"{source}: not valid YAML: nested too deeply"]) from None
    lines: dict[Loc, int] = {}
    duplicates: list[Loc] = []
    pending = [((), root)] if root is not None else []
    while pending:
        loc, node = pending.pop()
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                child = loc + (key.value if isinstance(key, yaml.ScalarNode) else "?",)
                if child in seen:
                    duplicates.append(child)
                seen.add(child)
                lines[child] = key.start_mark.line + 1
                pending.append((child, value))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((loc + (index,), item) for index, item in enumerate(node.value))
    return data, lines, duplicates


def _check_bounds(text: str, source: Path) -> None:
    """Refuse a file that is too large, holds too many aliases, nests too deeply or holds a
    number too long to be meant, from YAML's events, before anything is built from them."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(source, [f"{source}: larger than {MAX_BYTES >> 10} KiB; not a configuration file"])
    aliases = depth = 0
    for event in yaml.parse(text, Loader=PlainLoader):
        where = f"{source}:{event.start_mark.line + 1}"
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(source, [f"{where}: more than {MAX_ALIASES} YAML aliases (*name); write values out"])
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(source, [f"{where}: nested more than {MAX_DEPTH} levels deep"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_SCALAR_DIGITS and NUMBER.match(event.value):
            raise ConfigError(source, [f"{where}: a number of {len(event.value)} digits; no setting takes one"])


def _explain(error: dict) -> tuple[Loc, str]:
    """The key path and a plain sentence for one pydantic error."""
    loc = tuple(str(part) if not isinstance(part, int) else part for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc)
    if kind in PLAIN_FORMS:
        return loc, PLAIN_FORMS[kind]
    message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":
        return loc[:-1], f"key {message[0].lower()}{message[1:]}"
    return loc, message[0].lower() + message[1:]


def _unknown_key(loc: Loc) -> str:
    known = _keys_at(loc[:-1])
    hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if hint:
        return f"unknown key (did you mean '{hint[0]}'?)"
    return "unknown key; allowed here: " + ", ".join(known)


def _keys_at(loc: Loc) -> list[str]:
    """Field names of the model section found at a key path."""
    kind: object = Config
    for part in loc:
        section = _section(kind)
        if section and isinstance(part, str) and part in section.model_fields:
            kind = section.model_fields[part].annotation
        else:  # a list index or a mapping key
            args = typing.get_args(kind)
            kind = args[-1] if args else None
    section = _section(kind)
    return list(section.model_fields) if section else []


def _section(kind: object) -> type[BaseModel] | None:
    """The model class of an annotation such as ``Host`` or ``Host | None``."""
    candidates = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _line(source: Path, lines: dict[Loc, int], loc: Loc, message: str) -> str:
    known = next((loc[:n] for n in range(len(loc), -1, -1) if loc[:n] in lines), ())
    line = lines.get(known, 1)
    return f"{source}:{line}: {format_loc(loc) or '(top level)'}: {message}"


def format_loc(loc: Loc) -> str:
    """``('users', 3, 'quota')`` -> ``users[3].quota``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
