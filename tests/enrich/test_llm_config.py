"""`enrich.llm` in hub.yaml: off by default, validated at start with the path of what is wrong, and its
key never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_config
from shared.errors import OutpostError

pytestmark = pytest.mark.unit


def _load(tmp_path: Path, llm: str) -> str:
    path = tmp_path / "hub.yaml"
    path.write_text(f"enrich:\n  llm:\n{llm}")
    with pytest.raises(OutpostError) as err:
        load_config(path)
    return str(err.value)


def test_enrichment_is_off_by_default_and_its_key_is_never_shown(tmp_path: Path) -> None:
    assert load_config(None).enrich.llm.enabled is False
    path = tmp_path / "hub.yaml"
    path.write_text("enrich:\n  llm:\n    enabled: true\n    api_key: sk-do-not-show-0123456789\n")
    config = load_config(path)
    assert config.enrich.llm.api_key is not None
    assert config.enrich.llm.api_key.get_secret_value() == "sk-do-not-show-0123456789"
    assert "sk-do-not-show" not in repr(config) and "sk-do-not-show" not in config.model_dump_json()


@pytest.mark.parametrize(
    ("llm", "expected"),
    [
        ("    base_url: ftp://model.example\n", "enrich -> llm -> base_url"),
        ("    base_url: http://user:pw@model.example\n", "credentials go in api_key"),
        ("    redact: ['ok', '(unclosed']\n", "pattern 1"),
        ("    concurrency: 0\n", "enrich -> llm -> concurrency"),
        ("    temperature: 0.2\n", "enrich -> llm -> temperature"),
    ],
)
def test_a_bad_setting_is_refused_with_its_path(tmp_path: Path, llm: str, expected: str) -> None:
    assert expected in _load(tmp_path, llm)
