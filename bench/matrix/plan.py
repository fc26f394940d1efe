"""A run's plan: its options (``MatrixOptions``), and the matrix cells expanded from a preset (bench.matrix.preset).

A cell is (dataset, model, attack, attack parameters, threat setting, sample set, seed). Its
``hash`` keys the results store; its ``craft_key`` (what was attacked, how, on which images) keys
the cache of adversarial examples, so a transfer cell reuses the white-box examples crafted on its
source model and a tailored cell reuses the targeted white-box ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.attacks import ATTACKS
from bench.attacks.family import plain_value
from bench.errors import ConfigError
from bench.matrix.cluster import DaskSettings
from bench.matrix.preset import Preset, load_preset
from bench.matrix.settings import TARGETED_SETTINGS
from bench.results import diagnostics
from bench.results.identity import digest
from models.external import ExternalModel
from models.seeds import seeded_name, split_seeded_name
from models.spec import ModelSpec, make_spec


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str  # the model's label, e.g. O:SOFTMAX:CE or lmcl_s10_m0.3 (O:SOFTMAX:CE@s1: models/seeds.py)
    model_key: str  # its model store key
    setting: str
    attack: str
    params: tuple[tuple[str, float | str], ...]  # every parameter, numbers' defaults included (words': not), sorted
    param: str
    value: float
    n_samples: int
    seed: int
    source: str | None = None  # transfer: the model the examples are crafted on
    source_key: str | None = None
    tables: tuple[str, ...] = field(default=(), compare=False)
    variant: str = field(default="", compare=False)  # in the name only: the hash is the configuration's
    attack_code: str | None = None  # a plugin attack's code hash (None for built-ins, whose hashes stay as they were)
    shard: int = 0  # images per shard, each crafted with its own seed (bench.matrix.shards); 0: the cell in one piece

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
            **({"shard": self.shard} if self.shard else {}),  # unsharded cells keep the keys they always had
        }

    @property
    def hash(self) -> str:
        return digest(self.config())

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
            **({"shard": self.shard} if self.shard else {}),  # unsharded cells keep the keys they always had
        }
        return digest(craft)

    @property
    def name(self) -> str:
        value = f"{self.value:g}" + (f", {self.variant}" if self.variant else "")
        where = f"{self.source}->{self.model}" if self.source else self.model
        return f"{self.dataset}/{self.setting}/{self.attack}[{self.param}={value}]/{where}"


def models_needed(cells) -> set[str]:
    """The labels of the models ``cells`` need: those they score and those their examples are crafted on."""
    cells = list(cells)  # may be a generator: read twice
    return {c.model for c in cells} | {c.source for c in cells if c.source}


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
    shard_images: int | None = None,
) -> list[Cell]:
    """Every cell of ``preset`` for the models in ``model_keys`` (label -> store key), filtered and deduplicated.
    ``shard_images`` (else the preset's): cells of more images are crafted in shards of that many."""
    seed = preset.seed if seed is None else seed
    shard = preset.shard_images if shard_images is None else shard_images
    samples = {**preset.samples, **(n_samples or {})}
    cells: dict[str, Cell] = {}
    for number, group in enumerate(preset.groups, 1):
        if (attacks and group.attack not in attacks) or (settings and group.setting not in settings):
            continue
        family = ATTACKS.get(group.attack)
        fixed = {**family.defaults, **preset.overrides.get(group.attack, {}), **group.params}
        wanted = [m for m in model_keys if group.models is None or _named(m, group.models)]
        for value in group.sweep_values:
            params = family.without_default_words({**fixed, group.sweep_param: value})
            _check_arguments(family, params, f"preset {preset.name!r}, the cells of [[group]] {number}")
            frozen = tuple(sorted((k, plain_value(v)) for k, v in params.items()))
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
                    shard=shard if 0 < shard < samples[group.attack] else 0,  # one shard is the whole cell
                )
                if cell.hash in cells:  # the same cell asked by two tables: keep one, note both
                    cell = replace(cell, tables=cells[cell.hash].tables + cell.tables)
                cells[cell.hash] = cell
    _check_unique_names(cells.values())
    return list(cells.values())


def _check_arguments(family, params: dict[str, Any], where: str) -> None:
    """Names, ranges and words of a cell's parameters, before any work; an error says which group gave them."""
    try:
        family.arguments(params)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


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
    """(target, source) pairs; source is None outside the transfer setting. A source is the same training seed's
    model as its target (a model of your own, which has no seed, pairs with every seed's)."""
    if setting != "transfer":
        return [(m, None) for m in wanted]
    if group.transfer_matrix:  # every source x target among the group's models, the diagonal included
        return [(t, s) for s in wanted for t in wanted if _same_seed(t, s)]
    if transfer_matrix:
        return [(t, s) for s in model_keys for t in model_keys if _same_seed(t, s)]
    sources = [m for m in model_keys if _named(m, (transfer_source,))]
    return [(t, s) for t in wanted if not _named(t, (transfer_source,)) for s in sources if _same_seed(t, s)]


def _named(label: str, names) -> bool:
    """``label`` is one of ``names``, or the model of one of them trained with some seed (a group's models and the
    transfer source name base labels: models/seeds.py)."""
    return label in names or split_seeded_name(label)[0] in names


def _same_seed(target: str, source: str) -> bool:
    a, b = split_seeded_name(target)[1], split_seeded_name(source)[1]
    return a is None or b is None or a == b


@dataclass(frozen=True)
class MatrixOptions:
    dataset: str
    preset: str = "paper"
    models: tuple[str, ...] | None = None
    attacks: tuple[str, ...] | None = None
    settings: tuple[str, ...] | None = None
    n_samples: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    device: str = "cpu"
    transfer_matrix: bool = False
    batch_size: int = 128
    data_dir: Path | None = None
    codebook_key: str | None = None
    progress: bool = True
    external: tuple[ExternalModel, ...] = ()  # networks of your own, evaluated beside (or instead of) the zoo
    training_seeds: tuple[int, ...] | None = None  # train each model once per seed (None: the preset's)
    shard_images: int | None = None  # craft cells of more images in shards of this many (None: the preset's)
    dask: DaskSettings | None = None  # run the groups as Dask tasks there (bench.matrix.dask_run); None: here, in turn


@dataclass
class Plan:
    preset: Preset
    specs: dict[str, ModelSpec | ExternalModel]  # label -> what to train or take
    cells: list[Cell]

    @property
    def dataset(self) -> str:
        return next(iter(self.specs.values())).dataset


def make_plan(options: MatrixOptions) -> Plan:
    """Validate every name and parameter and expand the preset; no model is touched yet.

    With ``external`` models the preset's own models are left out unless ``models`` names some."""
    preset = load_preset(options.preset)
    names = options.models or (() if options.external else preset.models)
    specs: dict[str, ModelSpec | ExternalModel] = dict(_zoo_specs(preset, options, names))
    for model in options.external:
        if model.label in specs or split_seeded_name(model.label)[1] is not None:
            raise ConfigError(
                f"model label {model.label!r} is taken by another model of this run, or reads as a model trained "
                "with a seed (<label>@s<seed>); give yours another name."
            )
        specs[model.label] = model
    if not specs:
        raise ConfigError(
            f"preset {preset.name!r} names no models and none were given; list some under models = [...]."
        )
    from bench.attacks import ATTACKS
    from bench.matrix.settings import SETTINGS

    attacks = tuple(ATTACKS.canonical(a) for a in options.attacks) if options.attacks else None
    settings = tuple(SETTINGS.canonical(s) for s in options.settings) if options.settings else None
    n_samples = {ATTACKS.canonical(k): v for k, v in options.n_samples.items()}
    _check_model_names(preset, options, specs)
    cells = expand(
        preset,
        next(iter(specs.values())).dataset,
        {label: s.key() for label, s in specs.items()},
        attacks=attacks,
        settings=settings,
        n_samples=n_samples,
        seed=options.seed,
        transfer_matrix=options.transfer_matrix,
        shard_images=options.shard_images,
    )
    _check_views(cells, specs)
    _check_sizes(cells, preset)
    if not cells and not diagnostics.wanted(attacks, settings):  # a run of nothing would pass for a finished one
        raise ConfigError(
            f"the plan has no cells: preset {preset.name!r} with models {', '.join(specs)}, attacks "
            f"{', '.join(attacks or ('all',))}, settings {', '.join(settings or ('all',))} selects none "
            f"(a transfer cell needs a model besides its source {preset.transfer_source!r}); widen the selection."
        )
    return Plan(preset, specs, cells)


def training_seeds(preset: Preset, options: MatrixOptions) -> tuple[int, ...]:
    """The run's training seeds: ``--training-seeds``, else the preset's ``training_seeds``, else its [training]
    seed alone."""
    from bench.matrix.preset_schema import training_seeds_problem

    given = options.training_seeds
    expected = None if given is None else training_seeds_problem(list(given) if isinstance(given, tuple) else given)
    if expected:
        raise ConfigError(f"--training-seeds (training_seeds=) {given!r}; expected {expected}.")
    seeds = given or preset.training_seeds
    return tuple(seeds) if seeds else (preset.train_config().seed,)


def _zoo_specs(preset: Preset, options: MatrixOptions, names) -> dict[str, ModelSpec]:
    """label -> spec of the zoo models ``names``, one per training seed. With several seeds a model is named
    ``<label>@s<seed>`` (models/seeds.py) and a seeded name picks one seed; with one, its label alone, as ever."""
    seeds, training = training_seeds(preset, options), preset.train_config()
    specs = {}
    for name in names:
        base, only = split_seeded_name(name)
        if only is not None and only not in seeds:
            raise ConfigError(
                f"model {name!r} names training seed {only}; this run trains seeds {', '.join(map(str, seeds))} "
                "(the preset's training_seeds or [training] seed, or --training-seeds); expected one of them."
            )
        params, key = preset.model_params.get(base), options.codebook_key
        for seed in seeds if only is None else (only,):
            train = replace(training, seed=seed)
            arch = preset.arch_options
            spec = make_spec(options.dataset, base, preset.arch, train, codebook_key=key, params=params, **arch)
            specs[seeded_name(spec.loss_label, seed) if len(seeds) > 1 else spec.loss_label] = spec
    return specs


def _check_sizes(cells: list[Cell], preset: Preset) -> None:
    """A cell of more images than the test split holds would run on the whole split while its stored
    configuration says more: refused, naming the count and the most there is."""
    from bench.data.datasets import dataset_info

    for cell in cells:
        limit = dataset_info(cell.dataset).n_test
        if cell.n_samples > limit:
            raise ConfigError(
                f"cell {cell.name} asks for {cell.n_samples} images (--n-samples or the preset's [samples]); the "
                f"{cell.dataset} test split holds {limit}: expected 1..{limit}."
            )
    limit = dataset_info(cells[0].dataset).n_test if cells else None
    if limit and preset.diagnostic_samples > limit:
        raise ConfigError(
            f"preset {preset.name!r}: diagnostic_samples = {preset.diagnostic_samples}; the {cells[0].dataset} "
            f"test split holds {limit}: expected 1..{limit}."
        )


def _check_model_names(preset: Preset, options: MatrixOptions, specs: dict) -> None:
    """A group's models and the transfer source must name models of the preset (or of this run): an unknown
    name would silently select no cell."""
    import difflib

    known = set(preset.models) | set(specs) | {split_seeded_name(label)[0] for label in specs}
    if options.models:  # the labels of the preset's own models too (lmcl -> lmcl_s10_m0.3)
        training = preset.train_config()
        for name in preset.models:
            params = preset.model_params.get(name)
            spec = make_spec(options.dataset, name, preset.arch, training, params=params, **preset.arch_options)
            known.add(spec.loss_label)
    named = [(n, "a [[group]]'s models") for g in preset.groups for n in g.models or ()]
    if any(g.setting == "transfer" and not g.transfer_matrix for g in preset.groups) and not options.transfer_matrix:
        named.append((preset.transfer_source, "transfer_source"))
    for name, where in named:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.0)
            raise ConfigError(
                f"preset {preset.name!r}: {where} names {name!r}, which is not one of its models "
                f"({', '.join(sorted(known))}).{f' Did you mean {close[0]!r}?' if close else ''}"
            )


def _check_views(cells: list[Cell], specs: dict) -> None:
    """Every cell's attack needs a view of the model its examples are crafted on (raw outputs, codewords) that the
    model offers: refused before any work, naming the cell, rather than attacking something else in its place."""
    from bench.attacks import ATTACKS

    for cell in cells:
        spec = specs[cell.craft_model]
        views = spec.kind.views if isinstance(spec, ModelSpec) else ("scores", "raw")
        needs = ATTACKS.get(cell.attack).needs_view
        if needs not in views:
            raise ConfigError(
                f"cell {cell.name}: attack {cell.attack!r} needs the model's {needs!r} view, and "
                f"{cell.craft_model} offers {', '.join(views)}; give its group models = [...] without it."
            )
