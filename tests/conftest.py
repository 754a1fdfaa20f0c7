"""Shared fixtures: every test runs with a private configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autojob import SETTINGS


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the config file at a path that does not exist; restore SETTINGS."""
    config = tmp_path_factory.mktemp("config") / "config.toml"
    monkeypatch.setenv("AUTOJOB_CONFIG_FILE", str(config))
    saved = SETTINGS.model_dump()
    yield
    for key, value in saved.items():
        if getattr(SETTINGS, key) != value:
            setattr(SETTINGS, key, value)
