"""Loading YAML config into frozen pydantic models with path-style error messages, and checking the
files a config names (CA, certificates, secret files) before a process starts on it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ReferencedFile:
    """Marks a config `Path` field as something that must exist and be readable when the process starts.

    `secret` files (keys, passwords, communities) must also not be readable by every user: the rule is
    "not world-readable" (group-readable is allowed, so a service group can share a secret).
    """

    secret: bool = False
    directory: bool = False


# Field types for config models: `ca_file: InputFile`, `password_file: SecretFile | None`.
InputFile = Annotated[Path, ReferencedFile()]
SecretFile = Annotated[Path, ReferencedFile(secret=True)]
InputDir = Annotated[Path, ReferencedFile(directory=True)]


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


def check_referenced_files(path: Path, config: BaseModel) -> None:
    """Checks every file a validated config names (fields typed InputFile, SecretFile, InputDir).

    `check-config` and `run` both call this, so a config that passes the check can start.

    Raises:
        ConfigError: one line per problem, e.g. `hub -> tls -> ca_file: file not found: /etc/outpost/ca.pem`.
    """
    problems = [f"{' -> '.join(str(p) for p in loc)}: {why}" for loc, why in referenced_file_problems(config)]
    if problems:
        raise ConfigError(f"{path}: files named in the config cannot be used\n" + "\n".join(problems))


def referenced_file_problems(config: BaseModel) -> list[tuple[tuple[str | int, ...], str]]:
    """(field path, problem) for each referenced file that is missing, of the wrong type, unreadable,
    or (for secrets) world-readable. Paths are the same as in validation errors (list indices from 0)."""
    out = []
    for loc, value, ref in _referenced(config, ()):
        why = file_problem(value, ref)
        if why is not None:
            out.append((loc, why))
    return out


def file_problem(path: Path, ref: ReferencedFile) -> str | None:
    """What is wrong with one referenced file, or None. The file's content is never read into the text."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{'directory' if ref.directory else 'file'} not found: {path}"
    except OSError as exc:
        return f"cannot access: {exc.strerror}: {path}"
    if ref.directory:
        if not stat.S_ISDIR(st.st_mode):
            return f"not a directory: {path}"
        return None if os.access(path, os.R_OK | os.X_OK) else f"cannot read: permission denied: {path}"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file: {path}"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"cannot read: {(exc.strerror or str(exc)).lower()}: {path}"
    mode = stat.S_IMODE(st.st_mode)
    if ref.secret and mode & stat.S_IROTH:
        return (
            f"secret file is readable by every user (mode {mode:04o}): {path}; "
            "secret files must not be world-readable (chmod o-rwx, e.g. 0600 or 0640)"
        )
    return None


def _referenced(
    model: BaseModel, loc: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Path, ReferencedFile]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*loc, name)
        ref = next((m for m in info.metadata if isinstance(m, ReferencedFile)), None) or _marker(
            info.annotation
        )
        if ref is not None and isinstance(value, Path):
            yield here, value, ref
        elif isinstance(value, BaseModel):
            yield from _referenced(value, _tagged(here, value))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _referenced(item, _tagged((*here, i), item))


def _tagged(loc: tuple[str | int, ...], model: BaseModel) -> tuple[str | int, ...]:
    """Members of a `kind:`-discriminated union get their tag in the path, as pydantic's errors do."""
    kind = getattr(model, "kind", None)
    return (*loc, kind) if isinstance(kind, str) else loc


def _marker(annotation: Any) -> ReferencedFile | None:
    """Finds a ReferencedFile inside `Annotated[...]`, also under `| None` or a container."""
    if get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, ReferencedFile):
                return meta
        return _marker(get_args(annotation)[0])
    for arg in get_args(annotation):
        found = _marker(arg)
        if found is not None:
            return found
    return None
