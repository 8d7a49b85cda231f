"""Loading YAML config into frozen pydantic models with path-style error messages."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def format_validation_error(exc: ValidationError) -> str:
    """Renders each error as `devices -> 3 -> snmp -> community: Field required`, one per line.

    Input values are never echoed, so a secret in a bad field cannot leak into a log.
    """
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        path = " -> ".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{path}: {err['msg']}")
    return "\n".join(lines)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Reads and validates a YAML config file.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate (message has field paths).
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid config\n{format_validation_error(exc)}") from exc
