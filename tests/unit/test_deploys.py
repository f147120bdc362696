"""The deploy entry point runs exactly the components the registry knows."""

import ast
from pathlib import Path

from mailstack.components import COMPONENTS

ENTRY = Path(__file__).resolve().parents[2] / "deploys" / "mail_cluster.py"


def test_every_component_has_one_step_and_no_more():
    steps = [
        node.args[0].id for node in ast.walk(ast.parse(ENTRY.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "step"
    ]
    assert sorted(steps) == sorted(component.name for component in COMPONENTS)
