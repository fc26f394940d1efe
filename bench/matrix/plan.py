"""Presets (data files) expanded into matrix cells.

A cell is (dataset, model, attack, attack parameters, threat setting, sample set, seed). Its
``hash`` keys the results store; its ``craft_key`` (what was attacked, how, on which images) keys
the cache of adversarial examples, so a transfer cell reuses the white-box examples crafted on its
source model and a tailored cell reuses the targeted white-box ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from bench.attacks import ATTACKS
from bench.errors import ConfigError, UnknownNameError
from bench.registry import Registry
from bench.results import diagnostics
from models.spec import AdversarialTraining, TrainConfig

SETTINGS = Registry[str]("threat setting")
SETTINGS.register("whitebox_untargeted", "accuracy on white-box untargeted adversarial examples")
SETTINGS.register("whitebox_targeted", "success rate of a white-box targeted attack (random target per image)")
SETTINGS.register("transfer", "accuracy on untargeted examples crafted on another model (black-box)")
SETTINGS.register("tailored", "success rate of targeted stock CW-L2 against the codeword CW-L2 (saito2019 Table 7)")
SETTINGS.register(diagnostics.SETTING, "gradient health of each model: zero, vanishing gradients and saturated outputs")
TARGETED_SETTINGS = ("whitebox_targeted", "tailored")

@dataclass(frozen=True)
class PresetFile:
    """Where a named preset's TOML lives (a Path, or a packaged resource) and who registered it."""

    source: Any
    origin: str = "built-in"

    def read_text(self) -> str:
        return self.source.read_text()


PRESETS = Registry[PresetFile]("preset")
for _p in ("paper", "quick", "vu2018"):
    PRESETS.register(_p, PresetFile(resources.files("bench.matrix.presets").joinpath(f"{_p}.toml")))


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
    """A packaged preset by name (paper, quick) or a TOML file by path; validated here, once."""
    data = _read_toml(name_or_path)
    if "inherit" in data:
        base = _read_toml(data["inherit"])
        merged = {**base, **{k: v for k, v in data.items() if k not in ("samples", "params", "inherit")}}
        merged["samples"] = {**base.get("samples", {}), **data.get("samples", {})}
        merged["params"] = {**base.get("params", {}), **data.get("params", {})}
        data = merged
    try:
        groups = tuple(_group(g) for g in data["group"])
        preset = Preset(
            name=data["name"],
            description=data.get("description", ""),
            models=tuple(data["models"]),
            arch=data.get("arch", "cnn"),
            seed=int(data.get("seed", 0)),
            transfer_source=data.get("transfer_source", "O:SOFTMAX:CE"),
            samples={ATTACKS.canonical(k): int(v) for k, v in data["samples"].items()},
            groups=groups,
            overrides={ATTACKS.canonical(k): dict(v) for k, v in data.get("params", {}).items()},
            training=dict(data.get("training", {})),
            diagnostic_samples=int(data.get("diagnostic_samples", Preset.diagnostic_samples)),
        )
    except UnknownNameError as exc:  # a KeyError too, but its message already names the valid choices
        raise ConfigError(f"preset {name_or_path!r}: {exc}") from exc
    except KeyError as exc:
        raise ConfigError(f"preset {name_or_path!r} lacks the key {exc}; see bench/matrix/presets/paper.toml.") from exc
    for group in preset.groups:
        if group.attack not in preset.samples:
            raise ConfigError(f"preset {preset.name!r} gives no sample count for attack {group.attack!r}.")
    return preset


def _read_toml(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist.")
        return tomllib.loads(path.read_text())
    return tomllib.loads(PRESETS.get(name_or_path).read_text())


def _group(g: dict[str, Any]) -> Group:
    (param, values), *rest = g["sweep"].items()
    if rest:
        raise ConfigError(f"a preset group sweeps one parameter; {g['attack']} sweeps {list(g['sweep'])}.")
    return Group(
        tables=tuple(g.get("tables", ())),
        setting=SETTINGS.canonical(g["setting"]),
        attack=ATTACKS.canonical(g["attack"]),
        sweep_param=param,
        sweep_values=tuple(float(v) for v in values),
        params=dict(g.get("params", {})),
        models=tuple(g["models"]) if "models" in g else None,
        transfer_matrix=bool(g.get("transfer_matrix", False)),
        variant=str(g.get("variant", "")),
    )


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str  # the model's label, e.g. O:SOFTMAX:CE or lmcl_s10_m0.3
    model_key: str  # its model store key
    setting: str
    attack: str
    params: tuple[tuple[str, float], ...]  # every parameter, defaults included, sorted
    param: str
    value: float
    n_samples: int
    seed: int
    source: str | None = None  # transfer: the model the examples are crafted on
    source_key: str | None = None
    tables: tuple[str, ...] = field(default=(), compare=False)
    variant: str = field(default="", compare=False)  # in the name only: the hash is the configuration's
    attack_code: str | None = None  # a plugin attack's code hash (None for built-ins, whose hashes stay as they were)

    @property
    def targeted(self) -> bool:
        return self.setting in TARGETED_SETTINGS

    @property
    def metric(self) -> str:
        return "success_rate" if self.targeted else "accuracy"

    @property
    def craft_model(self) -> str:
        return self.source or self.model

    @property
    def craft_model_key(self) -> str:
        return self.source_key or self.model_key

    def config(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "model_key": self.model_key,
            "setting": self.setting,
            "attack": self.attack,
            "params": dict(self.params),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "source": self.source,
            "source_key": self.source_key,
            "targeted": self.targeted,
            **({"attack_code": self.attack_code} if self.attack_code else {}),
        }

    @property
    def hash(self) -> str:
        return _digest(self.config())

    @property
    def craft_key(self) -> str:
        craft = {
            "dataset": self.dataset,
            "model_key": self.craft_model_key,
            "attack": self.attack,
            "params": dict(self.params),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "targeted": self.targeted,
            **({"attack_code": self.attack_code} if self.attack_code else {}),
        }
        return _digest(craft)

    @property
    def name(self) -> str:
        value = f"{self.value:g}" + (f", {self.variant}" if self.variant else "")
        where = f"{self.source}->{self.model}" if self.source else self.model
        return f"{self.dataset}/{self.setting}/{self.attack}[{self.param}={value}]/{where}"


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def expand(
    preset: Preset,
    dataset: str,
    model_keys: dict[str, str],
    *,
    attacks: tuple[str, ...] | None = None,
    settings: tuple[str, ...] | None = None,
    n_samples: dict[str, int] | None = None,
    seed: int | None = None,
    transfer_matrix: bool = False,
) -> list[Cell]:
    """Every cell of ``preset`` for the models in ``model_keys`` (label -> store key), filtered and deduplicated."""
    seed = preset.seed if seed is None else seed
    samples = {**preset.samples, **(n_samples or {})}
    cells: dict[str, Cell] = {}
    for group in preset.groups:
        if (attacks and group.attack not in attacks) or (settings and group.setting not in settings):
            continue
        family = ATTACKS.get(group.attack)
        fixed = {**family.defaults, **preset.overrides.get(group.attack, {}), **group.params}
        wanted = [m for m in model_keys if group.models is None or m in group.models]
        for value in group.sweep_values:
            params = {**fixed, group.sweep_param: value}
            family.arguments(params)  # validates names and ranges before any work
            frozen = tuple(sorted((k, float(v)) for k, v in params.items()))
            pairs = _pairs(group.setting, wanted, model_keys, preset.transfer_source, transfer_matrix, group)
            for target, source in pairs:
                cell = Cell(
                    dataset=dataset,
                    model=target,
                    model_key=model_keys[target],
                    setting=group.setting,
                    attack=group.attack,
                    params=frozen,
                    param=group.sweep_param,
                    value=value,
                    n_samples=samples[group.attack],
                    seed=seed,
                    source=source,
                    source_key=model_keys[source] if source else None,
                    tables=group.tables,
                    variant=group.variant,
                    attack_code=family.code_hash(),
                )
                if cell.hash in cells:  # the same cell asked by two tables: keep one, note both
                    cell = replace(cell, tables=cells[cell.hash].tables + cell.tables)
                cells[cell.hash] = cell
    _check_unique_names(cells.values())
    return list(cells.values())


def _check_unique_names(cells) -> None:
    """Reports, the gate and the worst case look cells up by name: two configurations may not share one."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.name, cell)
        if other is not cell:
            raise ConfigError(
                f"two cells of the preset are both named {cell.name!r} (params {dict(other.params)} and "
                f'{dict(cell.params)}); give one of their groups a variant, e.g. variant = "restarts=4".'
            )


def _pairs(setting, wanted, model_keys, transfer_source, transfer_matrix, group):
    """(target, source) pairs; source is None outside the transfer setting."""
    if setting != "transfer":
        return [(m, None) for m in wanted]
    if group.transfer_matrix:  # every source x target among the group's models, the diagonal included
        return [(t, s) for s in wanted for t in wanted]
    if transfer_matrix:
        return [(t, s) for s in model_keys for t in model_keys]
    if transfer_source not in model_keys:
        return []
    return [(t, transfer_source) for t in wanted if t != transfer_source]
