"""mailstack: a highly available mail cluster on Debian, as code."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT / "templates"
