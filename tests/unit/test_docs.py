"""The public surface is documented: every CLI command and option is in the README."""

from __future__ import annotations

import re

import typer.main

from skinvault.cli import app
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _commands(group: object, prefix: str) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((f"{prefix} {name}", command))
        found.extend(_commands(command, f"{prefix} {name}"))
    return found


def test_every_cli_command_and_option_is_in_the_readme() -> None:
    commands = _commands(typer.main.get_command(app), "skinvault")
    assert len(commands) > 5
    for name, command in commands:
        assert name in README, f"command {name!r} is undocumented"
        for param in getattr(command, "params", []):
            for flag in getattr(param, "opts", []):
                if flag.startswith("--"):
                    assert flag in README, f"option {name} {flag} is undocumented"


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    from skinvault.config import Settings

    guide = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"SKINVAULT_{name.upper()}" in guide, f"setting {name} is undocumented"
        assert f"`{name}`" in guide, f"setting {name} has no TOML key in the guide"


def test_readme_shows_the_test_command_that_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
    assert re.search(r"^scripts/test\b", README, re.MULTILINE)


def test_every_audit_action_is_documented() -> None:
    from skinvault.audit.actions import Action

    guide = (ROOT / "docs" / "audit.md").read_text()
    for action in Action:
        assert f"| `{action.value}` |" in guide, f"audit action {action.value} is undocumented"


def test_the_purpose_table_matches_the_code() -> None:
    from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose

    guide = (ROOT / "docs" / "purposes.md").read_text()
    for purpose in Purpose:
        row = next(line for line in guide.splitlines() if line.startswith(f"| `{purpose.value}` |"))
        assert f"`{purpose.hl7_code}`" in row
        text = PURPOSE_TEXTS[purpose]
        assert f"| {purpose.value} | {text.version} | {text.text} |" in guide
