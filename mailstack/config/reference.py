"""The configuration reference, generated from the model.

``python -m mailstack.config.reference docs/configuration.md`` (``make docs``) writes it;
a unit test fails when the committed file differs from what the model generates.
"""

import sys
import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .model import Config
from .types import TypeName

INTRO = """\
# Configuration reference

<!-- Generated from mailstack/config/model.py by `make docs`; do not edit by hand. -->

Each environment has one YAML file beside its inventory (`inventories/prod.yml` beside
`inventories/prod.py`). `mailstack validate --inventory inventories/prod.py` checks it
without contacting any host; every mistake is reported as `FILE:LINE: key.path: what is wrong`.
Key paths below use `[]` for list items and `<name>` for mapping keys you choose.
Sizes take a number of bytes or a number with a unit K, M, G or T (binary: 1K = 1024).
Relative file paths are relative to the YAML file.
"""


def reference() -> str:
    sections = [INTRO]
    types_used: dict[str, str] = {}
    pending: list[tuple[str, type[BaseModel], str]] = [("", Config, "")]
    while pending:
        prefix, model, doc = pending.pop(0)
        rows = []
        for name, field in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            annotation = field.rebuild_annotation()
            for child, child_key in _sections(annotation, key):
                pending.append((child_key, child, field.description))
            types_used.update(_value_types(annotation))
            rows.append(
                f"| `{key}` | {_type_name(annotation)} | {_default(field.default)} "
                f"| `{_inline(field.examples[0])}` | {field.description} |"
            )
        heading = f"## `{prefix}`\n\n{doc}\n\n" if prefix else "## Top level\n\n"
        if model.__doc__ and prefix and model.__doc__ != BaseModel.__doc__:
            heading += f"{model.__doc__.strip()}\n\n"
        table = "| Key | Type | Default | Example | What it affects |\n|---|---|---|---|---|\n"
        sections.append(heading + table + "\n".join(rows) + "\n")
    sections.append(_value_types_section(types_used))
    return "\n".join(sections)


def _value_types_section(types_used: dict[str, str]) -> str:
    ordered = sorted(types_used.items(), key=lambda item: item[0].lower())
    rows = "\n".join(f"| {name} | {accepts} |" for name, accepts in ordered)
    return (
        "## Value types\n\nWhat a value of each type above may be; anything else is refused with the file, line and"
        " key. No text anywhere may hold a line break or another control character.\n\n"
        f"| Type | Accepts |\n|---|---|\n{rows}\n"
    )


def _value_types(annotation) -> dict[str, str]:
    """The named value types in an annotation, with what each accepts."""
    if typing.get_origin(annotation) is typing.Annotated:
        return {str(m): m.accepts for m in annotation.__metadata__ if isinstance(m, TypeName) and m.accepts}
    return {name: accepts for arg in typing.get_args(annotation) for name, accepts in _value_types(arg).items()}


def _sections(annotation, key: str) -> list[tuple[type[BaseModel], str]]:
    """Model sections reachable from a field, with the key path their keys get."""
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, key)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return _sections(args[0], f"{key}[]")
    if origin is dict:
        return _sections(args[1], f"{key}.<{_key_name(args[0])}>")
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in _sections(arg, key)]
    return []


def _key_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(typing.get_args(annotation))
    return "name"


def _strip(annotation):
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        names = [m for m in annotation.__metadata__ if isinstance(m, TypeName)]
        if names:
            return str(names[0])
        annotation = _strip(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if origin in (typing.Union, types.UnionType):
        kinds = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(kinds)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    names = {int: "integer", str: "string", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    return str(annotation)


def _default(default) -> str:
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, BaseModel):
        return "see its section"
    return f"`{_inline(default)}`"


def _inline(value) -> str:
    if isinstance(value, list):  # a list of sections (migration.waves) as its YAML would be written
        value = [item.model_dump(exclude_defaults=True) if isinstance(item, BaseModel) else item for item in value]
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")
    return text.replace("|", "\\|")


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(reference(), encoding="utf-8")
