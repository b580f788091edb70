"""Rendering notices and statements from jinja2 templates (HTML autoescaped, text plain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ledger.report_formats import hours

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_templates.filters["hours"] = hours


def render(name: str, context: dict[str, Any]) -> str:
    """`renewal.txt` → templates/renewal.txt.j2; `.html` templates escape every value."""
    return _templates.get_template(f"{name}.j2").render(**context)
