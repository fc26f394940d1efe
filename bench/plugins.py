"""Plugins: model kinds, losses, attacks and presets from outside the package, with no edit of it.

Two ways in, the way pytest finds ``pytest11`` plugins:

- Python entry points of an installed distribution, in the groups
  ``bench.models`` (a ``models.kinds.ModelKind``), ``bench.losses`` (a per-example loss
  ``loss(scores, labels) -> (N,)``, which becomes a model kind with a linear head under the entry point's
  name), ``bench.attacks`` (a ``bench.attacks.AttackFamily``) and ``bench.presets`` (a path to a preset
  TOML file). They are loaded once, by the command line and by every ``bench.api`` function.
- ``--plugin`` (or ``BENCH_PLUGINS``, separated by commas): a ``.py`` file or an importable
  module, whose top-level ``ModelKind`` and ``AttackFamily`` objects and ``PRESETS`` dict (name -> TOML
  path) are registered; or ``module:attribute`` for one object (a kind, an attack, a loss function or a
  preset path).

A plugin's kinds carry their origin and version, and the model store's key includes a hash of their code,
so an edited loss trains a new model instead of reusing the old one. Names get the same checks and
did-you-mean errors as the built-ins; a name taken twice is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.attacks import ATTACKS, AttackFamily
from bench.errors import ConfigError
from bench.matrix.preset import PRESETS, PresetFile
from bench.provenance import commit_of, record_project
from models.kinds import ModelKind, kind_from_loss, register_kind

GROUPS = ("bench.models", "bench.losses", "bench.attacks", "bench.presets")
ENV = "BENCH_PLUGINS"
_loaded: set[str] = set()  # entry points and paths already registered in this process


def load_plugins(paths: tuple[str, ...] | list[str] = ()) -> None:
    """Register every installed entry point, then each of ``paths`` and of ``BENCH_PLUGINS``; idempotent."""
    for group in GROUPS:
        for point in entry_points(group=group):
            _once(f"{group}:{point.name}", lambda p=point, g=group: _register_entry_point(g, p))
    from_env = [p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()]  # ":" is module:attribute's
    for spec in (*paths, *from_env):
        _once(f"path:{_canonical(spec)}", lambda s=spec: load_plugin(s))


def _split(spec: str) -> tuple[str, str]:
    """(module or .py path, attribute or ''): the last colon names an attribute unless the spec is a .py path."""
    if spec.endswith(".py"):
        return spec, ""
    where, sep, attribute = spec.rpartition(":")
    return (where, attribute) if sep and "/" not in attribute and "\\" not in attribute else (spec, "")


def _canonical(spec: str) -> str:
    """The same plugin however its path was typed (./x.py, x.py, /abs/x.py), so it loads once."""
    where, attribute = _split(spec)
    if where.endswith(".py"):
        where = str(Path(where).resolve())
    return f"{where}:{attribute}"


def _once(key: str, register) -> None:
    if key not in _loaded:
        register()
        _loaded.add(key)


def _register_entry_point(group: str, point: EntryPoint) -> None:
    dist = point.dist
    origin = f"plugin {dist.name}" if dist else f"plugin {point.value}"
    version = dist.version if dist else None
    if dist:
        record_project(f"plugin {dist.name}", dist.version)
    try:
        obj = point.load()
    except Exception as exc:  # a broken plugin is named, with what went wrong, before any work starts
        raise ConfigError(
            f"plugin entry point {point.name} = {point.value} (group {group}) failed to load: {exc}"
        ) from exc
    if group == "bench.losses":
        obj = kind_from_loss(point.name, obj, origin, version) if _is_loss(obj) else obj
    if group == "bench.presets" and isinstance(obj, (str, Path)):
        _register_preset(point.name, obj, with_version(origin, version))
        return
    register_object(obj, origin, version, where=f"entry point {point.name} = {point.value} (group {group})")


def load_plugin(spec: str) -> None:
    """One ``--plugin`` value: a ``.py`` file, a module, or ``module:attribute``."""
    module_name, attribute = _split(spec)
    module = _import(module_name)
    # the origin goes into store keys: name the file, not the path it was typed with, so a checkout elsewhere resumes
    origin = f"plugin {Path(module_name).name if module_name.endswith('.py') else module_name}"
    origin += f":{attribute}" if attribute else ""
    record_project(origin, _file_version(module) or _commit_of(getattr(module, "__file__", None)))
    if attribute:
        try:
            obj = getattr(module, attribute)
        except AttributeError:
            raise ConfigError(f"--plugin {spec!r}: module {module_name!r} has no attribute {attribute!r}.") from None
        if isinstance(obj, (str, Path)):
            _register_preset(attribute, obj, origin)
        elif _is_loss(obj):
            register_kind(kind_from_loss(attribute, obj, origin, _file_version(module)))
        else:
            register_object(obj, origin, _file_version(module), where=f"--plugin {spec!r}")
        return
    found = _register_module(module, origin)
    if not found:
        raise ConfigError(
            f"--plugin {spec!r} defines no ModelKind, AttackFamily or PRESETS dict at its top level; "
            "define one, or name an object with module:attribute."
        )


def _register_module(module: ModuleType, origin: str) -> int:
    version, found = _file_version(module), 0
    for name, obj in vars(module).items():
        if isinstance(obj, (ModelKind, AttackFamily)):
            register_object(obj, origin, version, where=f"{origin} ({name})")
            found += 1
    for name, path in (getattr(module, "PRESETS", None) or {}).items():
        _register_preset(name, Path(module.__file__).parent / path if module.__file__ else path, origin)
        found += 1
    return found


def register_object(obj: Any, origin: str, version: str | None, where: str) -> None:
    """Register a ModelKind or AttackFamily under its name, stamped with where it came from."""
    if isinstance(obj, ModelKind):
        register_kind(dataclasses.replace(obj, origin=origin, version=version))
    elif isinstance(obj, AttackFamily):
        stamped = dataclasses.replace(obj, origin=with_version(origin, version))
        ATTACKS.register(obj.name, stamped, aliases=obj.aliases)
    else:
        raise ConfigError(
            f"{where} is a {type(obj).__name__}; expected a ModelKind, an AttackFamily or a loss function."
        )


def _register_preset(name: str, path: str | Path, origin: str) -> None:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"plugin preset {name!r} points at {path}, which is not a file.")
    PRESETS.register(name, PresetFile(path, origin))


def with_version(origin: str, version: str | None) -> str:
    """An origin with its version, as `bench ls` shows it: ``plugin bench-focal-plugin 0.1.0``."""
    return f"{origin} {version}" if version else origin


def _import(name: str) -> ModuleType:
    path = Path(name)
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"--plugin {name!r}: no such file.")
        module_name = f"bench_plugin_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and inspect look modules up by name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the plugin's own error, in one line that names the file
            del sys.modules[module_name]
            raise ConfigError(f"--plugin {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"--plugin {name!r}: cannot import it ({exc}); give a .py path or an installed module."
        ) from exc


def _commit_of(file: str | None) -> str:
    if not file:
        return "unknown"
    return commit_of(Path(file).resolve().parent)


def _file_version(module: ModuleType) -> str | None:
    return getattr(module, "__version__", None)


def _is_loss(obj: Any) -> bool:
    return callable(obj) and not inspect.isclass(obj) and not isinstance(obj, (ModelKind, AttackFamily))


def _has_field(obj: Any, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(obj))
