"""mailstack: a highly available mail cluster on Debian, as code."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"  # a link to the project's templates/ in a checkout
