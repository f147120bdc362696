"""docs/configuration.md is generated from the model and must be current."""

from pathlib import Path

from mailstack.config.reference import reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current():
    assert DOC.read_text() == reference(), "docs/configuration.md is stale: run `make docs`"


def test_every_field_has_a_description_and_an_example():
    from mailstack.config.model import Config
    from mailstack.config.reference import _sections

    pending, seen = [Config], set()
    while pending:
        model = pending.pop()
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description and field.examples, f"{model.__name__}.{name}"
            pending += [child for child, _ in _sections(field.rebuild_annotation(), name) if child not in seen]
