"""Presets (data files) read and validated once into frozen Preset objects: their models, training, sample
counts, and groups of cells (setting, attack, swept parameter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from bench.attacks import ATTACKS
from bench.errors import ConfigError, UnknownNameError
from bench.matrix.preset_schema import check_complete, check_file
from bench.matrix.settings import SETTINGS
from bench.registry import Registry
from models.spec import AdversarialTraining, TrainConfig


@dataclass(frozen=True)
class PresetFile:
    """Where a named preset's TOML lives (a Path, or a packaged resource) and who registered it."""

    source: Any
    origin: str = "built-in"

    def read_text(self) -> str:
        return self.source.read_text()

    def read_bytes(self) -> bytes:
        return self.source.read_bytes()


PRESETS = Registry[PresetFile]("preset")
for _file in sorted(resources.files("bench.matrix.presets").iterdir(), key=lambda f: f.name):
    if _file.name.endswith(".toml"):  # every preset file shipped with the package, by its file name
        PRESETS.register(_file.name.removesuffix(".toml"), PresetFile(_file))


@dataclass(frozen=True)
class Group:
    tables: tuple[str, ...]
    setting: str
    attack: str
    sweep_param: str
    sweep_values: tuple[float, ...]
    params: dict[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    transfer_matrix: bool = False  # transfer between every pair of the group's models (vu2018 Table III)
    variant: str = ""  # told apart in cell names from another group of the same attack and sweep ("restarts=4")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    models: tuple[str, ...]
    arch: str
    seed: int
    transfer_source: str
    samples: dict[str, int]
    groups: tuple[Group, ...]
    overrides: dict[str, dict[str, Any]]
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields for the preset's models
    diagnostic_samples: int = 500  # images for the gradient-health cells (bench/results/diagnostics.py)
    model_params: dict[str, dict[str, float]] = field(default_factory=dict)  # [model_params.<model>]: its kind's
    training_seeds: tuple[int, ...] | None = None  # each model trained once per seed (replaces [training] seed)
    shard_images: int = 0  # cells of more images are crafted in shards of this many (bench.matrix.shards); 0: never
    arch_options: dict[str, int] = field(default_factory=dict)  # densenet_depth, densenet_growth where given

    def train_config(self) -> TrainConfig:
        """The preset's [training] table (with its optional [training.adversarial]) as a TrainConfig."""
        fields = dict(self.training)
        try:
            adversarial = fields.pop("adversarial", None)
            if adversarial is not None:
                fields["adversarial"] = AdversarialTraining(**adversarial)
            return TrainConfig(**fields)
        except TypeError as exc:
            raise ConfigError(
                f"preset {self.name!r} [training]: {exc}; expected TrainConfig fields "
                "(epochs, batch_size, lr, seed, n_train, [training.adversarial] eps, eps_step, max_iter)."
            ) from exc


def load_preset(name_or_path: str) -> Preset:
    """A packaged preset by name (paper, quick) or a TOML file by path; validated here, once, against one schema
    (bench.matrix.preset_schema): an unknown key or a value of the wrong kind is refused naming the file."""
    data = _inherited(name_or_path, ())
    check_complete(data, name_or_path)
    try:
        preset = Preset(
            name=data["name"],
            description=data.get("description", ""),
            models=tuple(data["models"]),
            arch=data.get("arch", "cnn"),
            seed=data.get("seed", 0),
            transfer_source=data.get("transfer_source", "O:SOFTMAX:CE"),
            samples={ATTACKS.canonical(k): v for k, v in data["samples"].items()},
            groups=tuple(_group(g) for g in data["group"]),
            overrides={ATTACKS.canonical(k): dict(v) for k, v in data.get("params", {}).items()},
            training=dict(data.get("training", {})),
            diagnostic_samples=data.get("diagnostic_samples", Preset.diagnostic_samples),
            model_params={name: dict(values) for name, values in data.get("model_params", {}).items()},
            training_seeds=tuple(data["training_seeds"]) if "training_seeds" in data else None,
            shard_images=data.get("shard_images", 0),
            arch_options={k: data[k] for k in ("densenet_depth", "densenet_growth") if k in data},
        )
    except UnknownNameError as exc:  # its message already names the valid choices
        raise ConfigError(f"preset {name_or_path!r}: {exc}") from exc
    for group in preset.groups:
        if group.attack not in preset.samples:
            raise ConfigError(f"preset {preset.name!r} gives no sample count for attack {group.attack!r}.")
    return preset


def _inherited(name_or_path: str, chain: tuple[str, ...]) -> dict[str, Any]:
    """A preset file's data over that of the preset it inherits, which may inherit in turn: each file's keys replace
    its base's whole (a [training] table included), except samples and params, which are merged key by key."""
    if name_or_path in chain:
        raise ConfigError(f"preset {name_or_path} inherits itself: {' -> '.join((*chain, name_or_path))}.")
    data = _read_toml(name_or_path)
    if "inherit" not in data:
        return data
    base = _inherited(_beside(name_or_path, data["inherit"]), (*chain, name_or_path))
    merged = {**base, **{k: v for k, v in data.items() if k not in ("samples", "params", "inherit")}}
    merged["samples"] = {**base.get("samples", {}), **data.get("samples", {})}
    merged["params"] = {**base.get("params", {}), **data.get("params", {})}
    return merged


def _beside(preset: str, inherited: str) -> str:
    """A preset file that another inherits, found beside the inheriting file when it is a relative path."""
    if Path(inherited).suffix == ".toml" and not Path(inherited).is_absolute() and Path(preset).suffix == ".toml":
        return str(Path(preset).parent / inherited)
    return inherited


def _read_toml(name_or_path: str) -> dict[str, Any]:
    """One preset file's data, checked against the schema on its own (a base it inherits is checked apart)."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist.")
        raw = path.read_bytes()
    else:
        raw = PRESETS.get(name_or_path).read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"preset {name_or_path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "expected a TOML file saved as UTF-8."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"preset {name_or_path} is not valid TOML: {exc}.") from None
    check_file(data, name_or_path)
    return data


def _group(g: dict[str, Any]) -> Group:
    """A [[group]] already checked by the schema (one swept parameter, a non-empty list of numbers)."""
    ((param, values),) = g["sweep"].items()
    return Group(
        tables=tuple(g.get("tables", ())),
        setting=SETTINGS.canonical(g["setting"]),
        attack=ATTACKS.canonical(g["attack"]),
        sweep_param=param,
        sweep_values=tuple(float(v) for v in values),
        params=dict(g.get("params", {})),
        models=tuple(g["models"]) if "models" in g else None,
        transfer_matrix=g.get("transfer_matrix", False),
        variant=g.get("variant", ""),
    )
