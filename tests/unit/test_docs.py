"""The public surface is documented: every CLI command and option is in the README."""

from __future__ import annotations

import re

import typer.main

from skinvault.cli import app
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_cli_command_and_option_is_in_the_readme() -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    for name, command in group.commands.items():
        assert f"skinvault {name}" in README, f"command {name} is undocumented"
        for param in command.params:
            for flag in getattr(param, "opts", []):
                if flag.startswith("--"):
                    assert flag in README, f"option {name} {flag} is undocumented"


def test_readme_shows_the_test_command_that_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
    assert re.search(r"^scripts/test\b", README, re.MULTILINE)
