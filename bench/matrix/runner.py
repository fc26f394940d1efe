"""Runs the cells of a matrix: models from the store (trained if missing), one record per finished cell.

A cell that raises is recorded with its error and the run goes on; the failures are summarised at
the end. Finished cells are skipped on a rerun, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.data import datasets
from bench.errors import ConfigError
from bench.matrix.craft import Crafter, SampleSet, sample_set
from bench.matrix.passes import Throughput, measure_throughput
from bench.matrix.plan import Cell, expand
from bench.matrix.preset import Preset, load_preset
from bench.provenance import git_commit, versions
from bench.results import diagnostics
from bench.results.metrics import perturbation_sizes, wilson_interval
from bench.results.store import Record, ResultsStore, encode_indices
from models.estimator import BenchClassifier, make_estimator
from models.external import ExternalModel
from models.inference import predict_scores
from models.spec import ModelSpec, make_spec
from models.store import ModelStore
from models.zoo import obtain

log = logging.getLogger(__name__)


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
    specs: dict[str, ModelSpec | ExternalModel] = {}
    training = preset.train_config()
    for name in names:
        params = preset.model_params.get(name)
        spec = make_spec(options.dataset, name, preset.arch, training, codebook_key=options.codebook_key, params=params)
        specs[spec.loss_label] = spec
    for model in options.external:
        if model.label in specs:
            raise ConfigError(
                f"model label {model.label!r} is taken by another model of this run; give yours another name."
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
    cells = expand(
        preset,
        next(iter(specs.values())).dataset,
        {label: s.key() for label, s in specs.items()},
        attacks=attacks,
        settings=settings,
        n_samples=n_samples,
        seed=options.seed,
        transfer_matrix=options.transfer_matrix,
    )
    _check_views(cells, specs)
    return Plan(preset, specs, cells)


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


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    diagnostics: int = 0  # gradient-health cells written (bench/results/diagnostics.py), beside the preset's cells


class MatrixRunner:
    def __init__(
        self, options: MatrixOptions, results: ResultsStore, out_dir: Path, model_store: ModelStore | None = None
    ) -> None:
        self.options = options
        self.results = results
        self.model_store = model_store or ModelStore()
        self.crafter = Crafter(out_dir / "adversarial", options.batch_size)
        self._estimators: dict[str, BenchClassifier] = {}
        self._throughput: dict[tuple[str, int], Throughput] = {}
        self._samples: dict[tuple[int, int], SampleSet] = {}
        self._clean: dict[tuple[str, int, int], torch.Tensor] = {}
        self._test: datasets.Split | None = None
        self._specs: dict = {}

    def run(self, plan: Plan) -> RunSummary:
        summary = RunSummary()
        self._specs = plan.specs
        renamed = self.results.rename({c.hash: c.name for c in plan.cells})  # names follow the code
        if renamed:
            log.info("%d stored cells renamed to their current names", renamed)
        finished = self.results.finished()
        todo = [c for c in plan.cells if c.hash not in finished]
        summary.skipped = len(plan.cells) - len(todo)
        if summary.skipped:
            log.info("%d of %d cells already finished; skipping them", summary.skipped, len(plan.cells))
        needed = {c.model for c in todo} | {c.source for c in todo if c.source}
        for label in sorted(needed):  # train what is missing before any attack
            self._estimator(plan.specs[label])
        # cheap cells first and by crafting model, so reused examples exist before transfer cells need them
        todo.sort(key=lambda c: (c.source is not None, c.attack, c.craft_model, c.value))
        bar = tqdm(todo, desc="matrix", disable=not self.options.progress, unit="cell")
        for cell in bar:
            bar.set_postfix_str(cell.name[-60:])
            try:
                record = self._run_cell(cell, plan)
            except Exception as exc:  # a failing cell is recorded and the run goes on
                log.error("cell %s failed: %s", cell.name, exc)
                record = self._error_record(cell, exc)
                summary.failed.append((cell.name, f"{type(exc).__name__}: {exc}"))
            else:
                summary.done += 1
            self.results.put(record)
        if diagnostics.wanted(self.options.attacks, self.options.settings):
            self._run_diagnostics(plan, summary)
        return summary

    def _run_diagnostics(self, plan: Plan, summary: RunSummary) -> None:
        """Gradient health of every model on the preset's diagnostic images (cheap: one gradient each)."""
        n, finished, device = plan.preset.diagnostic_samples, self.results.finished(), self.options.device
        seed = plan.preset.seed if self.options.seed is None else self.options.seed  # as expand() seeds cells
        samples = self._sample_set(n, seed)
        for label, spec in plan.specs.items():
            hashes = {c: diagnostics.diagnostic_hash(c, spec.key(), n, seed) for c in diagnostics.CHECKS}
            if all(h in finished for h in hashes.values()):
                continue
            start = time.perf_counter()
            shares = diagnostics.gradient_health(self._estimator(spec), samples.x.to(device), samples.y.to(device))
            seconds = time.perf_counter() - start
            for check, flags in shares.items():
                flags = flags.cpu()
                self.results.put(
                    Record(
                        cell_hash=hashes[check],
                        name=f"{self.options.dataset}/{diagnostics.SETTING}/{check}/{label}",
                        dataset=self.options.dataset,
                        model=label,
                        model_key=spec.key(),
                        setting=diagnostics.SETTING,
                        source=None,
                        attack=check,
                        param=None,
                        value=None,
                        config={"check": check, "n_samples": n, "revision": diagnostics.REVISION, "tables": []},
                        **diagnostics.share_fields(flags),
                        seconds=seconds,
                        per_example=np.packbits(flags.numpy()).tobytes(),
                        image_indices=encode_indices(samples.indices),
                        seed=seed,
                        **self._provenance(),
                    )
                )
                summary.diagnostics += 1

    def _estimator(self, spec: ModelSpec | ExternalModel) -> BenchClassifier:
        key = spec.key()
        if key not in self._estimators and isinstance(spec, ExternalModel):
            self._estimators[key] = spec.estimator(self.options.device)
        if key not in self._estimators:
            o = self.options
            stored = obtain(
                spec,
                self.model_store,
                data_dir=o.data_dir,
                device=o.device,
                codebook_key=o.codebook_key,
                progress=o.progress,
            )
            input_shape = tuple(stored.meta["input_shape"])
            est = make_estimator(spec, stored.network, input_shape, stored.meta["n_classes"], o.device)
            self._estimators[key] = est
        return self._estimators[key]

    def _pass_price(self, spec: ModelSpec, n_samples: int) -> Throughput:
        """Throughput at the batch size the attack ran with: a pass over 20 images costs more per image
        than one over 128, and pricing it at 128 would charge the attack for the network's overhead."""
        batch = min(self.options.batch_size, n_samples)
        key = (spec.key(), batch)
        if key not in self._throughput:
            probe = self._sample_set(batch, 0).x.to(self.options.device)  # any images: only the time counts
            self._throughput[key] = measure_throughput(self._estimator(spec).network, probe)
        return self._throughput[key]

    def _sample_set(self, n: int, seed: int) -> SampleSet:
        """n test images drawn by ``seed``: the cell's seed, which the stored record keeps, so the worst case
        can find each record's images again (bench.results.worst_case.image_indices)."""
        if self._test is None:
            self._test = datasets.load(self.options.dataset, "test", self.options.data_dir)
        if (n, seed) not in self._samples:
            self._samples[(n, seed)] = sample_set(self._test, n, seed)
        return self._samples[(n, seed)]

    def _scores(self, est: BenchClassifier, x: torch.Tensor) -> torch.Tensor:
        return predict_scores(est.network, x, device=self.options.device)

    def _run_cell(self, cell: Cell, plan: Plan) -> Record:
        start = time.perf_counter()
        samples = self._sample_set(cell.n_samples, cell.seed)
        source = self._estimator(plan.specs[cell.craft_model])
        crafted = self.crafter.craft(cell, source, samples)
        target = self._estimator(plan.specs[cell.model])
        predicted = self._scores(target, crafted.x_adv).argmax(1)
        wanted = samples.targets if cell.targeted else samples.y
        hit = predicted == wanted  # targeted: the attack succeeded; untargeted: the model is still right
        worked = hit if cell.targeted else ~hit
        clean_key = (cell.model_key, cell.n_samples, cell.seed)
        if clean_key not in self._clean:
            self._clean[clean_key] = self._scores(target, samples.x).argmax(1) == samples.y
        hits, n = int(hit.sum()), len(hit)
        low, high = wilson_interval(hits, n)
        sizes = perturbation_sizes(samples.x, crafted.x_adv, worked)
        passes = crafted.passes
        pass_seconds = self._pass_price(plan.specs[cell.craft_model], cell.n_samples).seconds(passes)
        return Record(
            **self._identity(cell),
            status="ok",
            metric=cell.metric,
            rate=hits / n,
            ci_low=low,
            ci_high=high,
            n=n,
            hits=hits,
            clean_accuracy=self._clean[clean_key].float().mean().item(),
            l2_mean=sizes.l2_mean,
            l2_median=sizes.l2_median,
            linf_mean=sizes.linf_mean,
            linf_median=sizes.linf_median,
            seconds=time.perf_counter() - start,
            craft_seconds=crafted.seconds,
            craft_reused=crafted.reused,
            examples_per_second=n / crafted.seconds if crafted.seconds else None,
            forward_passes=passes.forward,
            backward_passes=passes.backward,
            pass_seconds=pass_seconds,
            per_example=np.packbits(hit.numpy()).tobytes(),
            image_indices=encode_indices(samples.indices),
        )

    def _identity(self, cell: Cell) -> dict:
        return {
            "cell_hash": cell.hash,
            "name": cell.name,
            "dataset": cell.dataset,
            "model": cell.model,
            "model_key": cell.model_key,
            "setting": cell.setting,
            "source": cell.source,
            "attack": cell.attack,
            "param": cell.param,
            "value": cell.value,
            "config": {**cell.config(), "tables": list(cell.tables), **self._probes(cell)},
            "seed": cell.seed,
            **self._provenance(),
        }

    def _probes(self, cell: Cell) -> dict:
        """What the models were, without the code hashes of plugins (stored, not hashed): the gate compares a model
        retrained from edited code by its rates, but one trained otherwise (epochs, architecture) as changed."""
        probes = {"model_probe": self._specs[cell.model].probe()}
        if cell.source:
            probes["source_probe"] = self._specs[cell.source].probe()
        return probes

    def _provenance(self) -> dict:
        return {
            "device": self.options.device,
            "commit_id": git_commit(),
            "versions": versions(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def _error_record(self, cell: Cell, exc: Exception) -> Record:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        return Record(**self._identity(cell), status="error", error=f"{type(exc).__name__}: {exc}\n{tb}")
