"""The deploy entry points run exactly the components the registry knows, each once."""

import ast
from pathlib import Path

from mailstack.components import COMPONENTS

DEPLOYS = Path(__file__).resolve().parents[2] / "deploys"
LAB_SERVICES = {"bind", "pebble"}  # deployed by `mailstack lab up` (deploys/lab_services.py)


def _called(path: Path, wrapper: str | None) -> list[str]:
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
    if wrapper:
        return [c.args[0].id for c in calls if getattr(c.func, "id", None) == wrapper]
    return [c.func.id for c in calls if isinstance(c.func, ast.Name)]


def test_every_component_has_one_step_and_no_more():
    steps = _called(DEPLOYS / "mail_cluster.py", "step")
    lab = [name for name in _called(DEPLOYS / "lab_services.py", None) if name in LAB_SERVICES]
    assert sorted(steps + lab) == sorted(component.name for component in COMPONENTS)
