"""Where settings come from, for the gateway's and the emulator's alike.

Precedence, highest first: command-line options, ``TARGET_PROXY_*`` environment variables, the TOML file
named by ``--config`` / ``TARGET_PROXY_CONFIG``, the TOML file named by ``TARGET_PROXY_DEFAULTS`` (a
container image's own defaults), then each settings class's defaults. TOML tables are flattened, so
``[cache] max_entries = 10`` is the same as ``cache_max_entries = 10``. A settings class whose names have
a ``prefix`` (the emulator's: ``emulator_``) reads only the names that start with it, without it.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from pydantic_settings import SettingsError as SourceError

ENV_PREFIX = "TARGET_PROXY_"
# Variables of the prefix that are not settings: those of `upload-profiles`, and the files'.
OTHER_VARIABLES = frozenset({"GATEWAY", "CLIENT_KEY", "CONFIG", "DEFAULTS"})


class Sourced(BaseSettings):
    """Settings read from keyword values (the command line's over the TOML files', see ``load``) and the
    environment, nothing else."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings


Loaded = TypeVar("Loaded", bound=Sourced)


class SettingsError(Exception):
    """A setting has a bad value; the message names the setting and where it can be set."""


def flatten(table: dict[str, Any], keep: Collection[str] = (), prefix: str = "") -> dict[str, Any]:
    """``{"cache": {"max_entries": 1}}`` -> ``{"cache_max_entries": 1}``; names in ``keep`` are tables
    themselves (a setting whose value is a table)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, dict) and name not in keep:
            flat.update(flatten(value, keep, f"{name}_"))
        else:
            flat[name] = value
    return flat


def read_toml(path: Path, keep: Collection[str] = ()) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return flatten(tomllib.load(handle), keep)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc


def where(name: str, options: Mapping[str, str]) -> str:
    """Where a setting can be given: its command-line option (when the command has one), its variable and
    its name in the config file."""
    places = [options[name]] if name in options else []
    places += [f"{ENV_PREFIX}{name.upper()}", f"'{name}' in the config file"]
    return " / ".join(places)


def names_of(kind: type[BaseSettings], prefix: str = "") -> list[str]:
    """The names a settings class is set by (in the environment without ``TARGET_PROXY_``, upper case)."""
    return [f"{prefix}{name}" for name in kind.model_fields if name not in ("config", "defaults")]


def unknown_variables(known: Collection[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for TARGET_PROXY_* variables that name no setting (a misspelt one is otherwise ignored)."""
    environ = os.environ if environ is None else environ
    names = {name.upper() for name in known} | OTHER_VARIABLES
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable[len(ENV_PREFIX) :] in names:
            continue
        close = difflib.get_close_matches(variable[len(ENV_PREFIX) :], sorted(names), n=1, cutoff=0.75)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        warnings.append(f"warning: {variable} is not a setting and is ignored{hint}")
    return warnings


def _describe(error: ErrorDetails, options: Mapping[str, str], prefix: str) -> str:
    name = f"{prefix}{error['loc'][0]}" if error["loc"] else "settings"
    if error["type"] == "extra_forbidden":
        return f"unknown setting '{name}'"
    return f"invalid setting '{name}' ({where(name, options)}): {error['msg']}"


def load(
    kind: type[Loaded],
    cli: Mapping[str, Any] | None = None,
    options: Mapping[str, str] | None = None,
    *,
    prefix: str = "",
    others_prefix: str | None = None,
    shapes: Mapping[str, str] | None = None,
) -> Loaded:
    """``kind`` from CLI values (None means "not given"; named with the prefix), the environment and the
    TOML files. ``options`` maps setting names to the command-line options that set them; names that
    start with ``others_prefix`` are another settings class's; ``shapes``: what a table or list setting
    looks like in the environment, for the messages."""
    options = options or {}
    given = {key: value for key, value in (cli or {}).items() if value is not None}
    defaults_path = given.get("defaults") or os.environ.get(f"{ENV_PREFIX}DEFAULTS")
    config_path = given.get("config") or os.environ.get(f"{ENV_PREFIX}CONFIG")
    keep = [f"{prefix}{name}" for name in kind.model_fields]
    files = {**_file(defaults_path, keep), **_file(config_path, keep)}
    # The environment beats the files: drop the files' values for settings the environment sets.
    files = {k: v for k, v in files.items() if f"{ENV_PREFIX}{k.upper()}" not in os.environ}
    mine = {
        name.removeprefix(prefix): value
        for name, value in {**files, **given}.items()
        if name.startswith(prefix)
        and not (others_prefix and name.startswith(others_prefix))
        and name not in ("config", "defaults")
    }
    try:
        return kind(**mine)
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(e, options, prefix) for e in exc.errors())) from None
    except SourceError as exc:
        # A table or list in the environment that is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"{prefix}{match.group(1)}" if match else "settings"
        shape = (shapes or {}).get(name, "JSON")
        raise SettingsError(f"invalid setting '{name}' ({ENV_PREFIX}{name.upper()}): must be {shape}") from None


def _file(path: str | os.PathLike[str] | None, keep: Collection[str]) -> dict[str, Any]:
    return read_toml(Path(path), keep) if path else {}


def to_environ(settings: BaseSettings, prefix: str = "") -> dict[str, str]:
    """The settings as TARGET_PROXY_* variables, so that another process rebuilds the same object."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json", exclude={"config", "defaults"}).items():
        if value is None:
            continue
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):
            value = secret.get_secret_value()
        text = orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)
        env[f"{ENV_PREFIX}{prefix.upper()}{name.upper()}"] = text
    return env
