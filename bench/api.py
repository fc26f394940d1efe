"""The Python API: everything the command line does, as functions (``import bench``).

>>> import bench
>>> run = bench.run_matrix("mnist", preset="quick", attacks=["fgsm"], out="runs/try")
>>> bench.load_results("runs/try").query("attack == 'fgsm'")[["model", "eps", "rate", "ci_low", "ci_high"]]

Each function takes the same options as its command, writes to the same stores (BENCH_HOME, or ``out``)
and resumes the same way. Plugins (entry points, ``BENCH_PLUGINS``) load on the first call; pass
``plugins=`` for a ``--plugin`` path. ``evaluate`` runs a preset's cells on a network of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.data.datasets import DATASETS, dataset_info
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import RunSummary
from bench.plugins import load_plugins


@dataclass
class MatrixRun:
    """What a matrix run did: its summary, where its results are, and the report it wrote (if any)."""

    summary: RunSummary
    results_path: Path
    report: Path | None

    def frame(self) -> pd.DataFrame:
        """The run's results store as a DataFrame (``bench.load_results``)."""
        return load_results(self.results_path)


def _names(values: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return (values,) if isinstance(values, str) else tuple(values)


def _options(dataset: str, preset: str, plugins: Iterable[str], **kwargs: Any) -> MatrixOptions:
    load_plugins(tuple(plugins))
    for name in ("models", "attacks", "settings"):
        kwargs[name] = _names(kwargs.get(name))
    kwargs["n_samples"] = dict(kwargs.get("n_samples") or {})
    if isinstance(kwargs.get("training_seeds"), list):  # checked by the plan, as --training-seeds
        kwargs["training_seeds"] = tuple(kwargs["training_seeds"])
    if "cluster" in kwargs or "scheduler" in kwargs:  # the Dask executor, as --cluster / --scheduler
        from bench.matrix.cluster import DaskSettings

        where = {k: kwargs.pop(k) for k in ("scheduler", "cluster", "shared_disk", "slurm", "jobs") if k in kwargs}
        kwargs["dask"] = DaskSettings(**where)
    return MatrixOptions(dataset=DATASETS.canonical(dataset), preset=str(preset), **kwargs)


def run_matrix(
    dataset: str,
    preset: str | Path = "paper",
    *,
    out: str | Path | None = None,
    reports_dir: str | Path | None = None,
    plugins: Iterable[str] = (),
    **options: Any,
) -> MatrixRun:
    """``bench matrix``: run every cell of ``preset`` not yet in the store under ``out`` (default
    BENCH_HOME/results), and write ``reports_dir/<dataset>/`` when ``reports_dir`` is given.

    ``options`` are ``bench.matrix.runner.MatrixOptions`` fields: models, attacks, settings (lists of names),
    n_samples ({attack: images}), seed, training_seeds (each model trained once per seed, named <label>@s<seed>:
    models/seeds.py), shard_images (craft cells of more images in shards of that many: bench.matrix.shards), device,
    transfer_matrix, batch_size, data_dir, codebook_key, progress, external (networks of
    your own; see ``evaluate``); and ``cluster="local:N"`` or ``scheduler="tcp://host:8786"`` to run the craft
    groups as Dask tasks (``bench.matrix.dask_run``), with the same records (``shared_disk=False`` where the workers
    have no disk in common with this machine; ``slurm={...}`` and ``jobs`` for ``cluster="slurm"``).
    """
    from bench.matrix.execute import execute
    from bench.reports.dataset import write_report

    opts = _options(dataset, str(preset), plugins, **options)
    out_path = Path(out) if out is not None else None
    plan = make_plan(opts)
    summary, store = execute(plan, opts, out_path)
    dataset = plan.dataset
    written = write_report(dataset, store.path.parent, Path(reports_dir), out_path) if reports_dir else None
    return MatrixRun(summary, store.path.parent, written)


def plan_matrix(dataset: str, preset: str | Path = "paper", *, plugins: Iterable[str] = (), **options: Any):
    """``bench matrix --dry-run``: every name and parameter validated and the preset expanded, nothing run.
    Returns a ``bench.matrix.runner.Plan`` (``.cells``, ``.specs``); ``options`` as for ``run_matrix``."""
    return make_plan(_options(dataset, str(preset), plugins, **options))


def estimate_matrix(
    dataset: str,
    preset: str | Path = "paper",
    *,
    out: str | Path | None = None,
    passes_from: Iterable[str | Path] = (),
    plugins: Iterable[str] = (),
    **options: Any,
):
    """The cost ``bench matrix --dry-run`` prints: training of the models the store lacks and the crafts of the
    cells not yet under ``out``, from throughput measured here, each craft priced by the passes per image that
    store or one of ``passes_from`` (``--passes-from``) measured for it, else by its family's bound. Returns a
    ``bench.matrix.estimate.Estimate`` (``.seconds``, ``.training`` and ``.attacks`` by name, ``.describe()``)."""
    from bench.matrix.execute import estimate_run

    opts = _options(dataset, str(preset), plugins, **options)
    given = [Path(p) for p in passes_from]
    return estimate_run(make_plan(opts), opts, Path(out) if out is not None else None, given)


def evaluate(
    module: nn.Module,
    dataset: str,
    preset: str | Path = "quick",
    *,
    name: str = "mine",
    loss: str | Callable[..., torch.Tensor] | None = None,
    out: str | Path | None = None,
    reports_dir: str | Path | None = None,
    plugins: Iterable[str] = (),
    **options: Any,
) -> MatrixRun:
    """Run ``preset``'s cells on ``module``, any network that maps images (N, C, H, W) in [0, 1] to one score
    per class, as it is: no training. ``loss`` is what the attacks that use the model's own loss ascend
    (None: cross-entropy on the scores; a built-in loss name; or ``loss(scores, labels) -> (N,)``).
    ``models=[...]`` adds zoo models to the same run (then transfer cells from the preset's source apply).
    Results, reports, flags and the worst case are the zoo's.
    """
    from models.external import external_model

    load_plugins(tuple(plugins))
    info = dataset_info(DATASETS.canonical(dataset))
    model = external_model(module, name, info.name, info.shape, info.n_classes, loss)
    external = (*options.pop("external", ()), model)
    return run_matrix(dataset, preset, out=out, reports_dir=reports_dir, plugins=plugins, external=external, **options)


def load_results(path: str | Path | None = None, dataset: str | None = None) -> pd.DataFrame:
    """A results store (folder or .sqlite; default BENCH_HOME/results) as a DataFrame: one row per cell,
    every attack parameter its own column (``bench export`` writes the same table)."""
    from bench.paths import results_dir
    from bench.results.frame import results_frame

    return results_frame(results_dir(path), dataset)


def train(
    dataset: str,
    model: str,
    *,
    arch: str = "cnn",
    params: dict[str, float] | None = None,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    codebook_key: str | None = None,
    force: bool = False,
    progress: bool = True,
    plugins: Iterable[str] = (),
    **train_config: Any,
):
    """``bench train``: the stored model of this configuration, trained first if the store lacks it.
    ``train_config`` are ``models.spec.TrainConfig`` fields (epochs, batch_size, lr, seed, n_train, ...; FGSM-RS
    adversarial training: ``adversarial={"method": "fgsm_rs", "eps": 0.3}, schedule="cyclic"``);
    ``params`` the model kind's parameters (``bench ls models``). Returns a ``models.store.StoredModel``."""
    from models.spec import TrainConfig, make_spec
    from models.zoo import obtain

    load_plugins(tuple(plugins))
    spec = make_spec(dataset, model, arch, TrainConfig(**train_config), codebook_key=codebook_key, params=params)
    return obtain(spec, data_dir=data_dir, device=device, codebook_key=codebook_key, progress=progress, force=force)


def report(
    dataset: str,
    results: str | Path | None = None,
    reports_dir: str | Path = "reports",
    beside: Iterable[str | Path] = (),
) -> Path:
    """``bench report``: write ``reports_dir/<dataset>/`` from a results store alone, with the models of the
    ``beside`` stores next to its own (``bench report --beside``)."""
    from bench.paths import results_dir
    from bench.reports.dataset import write_report

    dataset = DATASETS.canonical(dataset)
    out = Path(results) if results is not None else None
    return write_report(dataset, results_dir(out), Path(reports_dir), out, [Path(b) for b in beside])


def baseline(
    dataset: str,
    preset: str | Path = "quick",
    *,
    results: str | Path | None = None,
    out: str | Path | None = None,
    plugins: Iterable[str] = (),
    **options: Any,
) -> Path:
    """``bench baseline``: run ``preset`` (or read the store ``results``) and write its baseline JSON."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import default_baseline_path, make_baseline, write_baseline

    opts = _options(dataset, str(preset), plugins, **options)
    records = plan_records(opts, _path(results), run=results is None)
    path = Path(out) if out else default_baseline_path(opts.dataset, str(preset))
    write_baseline(path, make_baseline(records, opts.dataset, str(preset)))
    return path


def check(
    dataset: str,
    baseline: str | Path,
    preset: str | Path = "quick",
    *,
    results: str | Path | None = None,
    tolerance: float = 0.0,
    strict: bool = False,
    plugins: Iterable[str] = (),
    **options: Any,
):
    """``bench check``: compare a run of ``preset`` (or the store ``results``) with ``baseline``.
    Returns a ``bench.results.gate.GateResult``: ``.failed`` and ``.markdown()``."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import compare, read_baseline

    base = read_baseline(baseline)
    opts = _options(dataset, str(preset), plugins, **options)
    records = plan_records(opts, _path(results), run=results is None)
    return compare(base, records, tolerance=tolerance, strict=strict)


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def lipschitz(dataset: str, preset: str = "paper", *, plugins: Iterable[str] = (), **options: Any) -> Path:
    """``bench lipschitz``: per-layer Lipschitz bounds of the preset's models (``bench.analyses.run.lipschitz``)."""
    from bench.analyses import run

    load_plugins(tuple(plugins))
    return run.lipschitz(dataset, str(preset), **options)


def inside(dataset: str, preset: str = "paper", *, plugins: Iterable[str] = (), **options: Any) -> Path:
    """``bench inside``: vu2018 Figures 1-4 for the preset's models (``bench.analyses.run.inside``)."""
    from bench.analyses import run

    load_plugins(tuple(plugins))
    return run.inside(dataset, str(preset), **options)


def pictures(dataset: str, preset: str = "paper", *, plugins: Iterable[str] = (), **options: Any) -> Path:
    """``bench pictures``: saito2019 Figures 1-3 for the preset's models (``bench.analyses.run.pictures``)."""
    from bench.analyses import run

    load_plugins(tuple(plugins))
    return run.pictures(dataset, str(preset), **options)


def compare_art(dataset: str, preset: str = "paper", *, plugins: Iterable[str] = (), **options: Any) -> Path:
    """``bench compare-art``: our estimator and attacks beside ART's stock ones (``bench.analyses.run``)."""
    from bench.analyses import run

    load_plugins(tuple(plugins))
    return run.compare_art(dataset, str(preset), **options)
