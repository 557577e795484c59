"""Settings: defaults < TOML file < environment < explicit options."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinvault.config import load_settings
from skinvault.errors import ConfigError


def test_later_sources_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "skinvault.toml"
    toml.write_text('organisation = "Clinic X"\nthumbnail_size = 200\n')
    monkeypatch.setenv("SKINVAULT_THUMBNAIL_SIZE", "300")
    from_file = load_settings(toml)
    assert from_file.organisation == "Clinic X" and from_file.thumbnail_size == 300
    assert load_settings(toml, thumbnail_size=100).thumbnail_size == 100
    assert load_settings().organisation == "This clinic"  # nothing leaks between calls


def test_a_missing_or_invalid_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid setting"):
        load_settings(thumbnail_size=1)
