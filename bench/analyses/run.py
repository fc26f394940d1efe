"""The analyses as functions of their options: each takes the preset's models from the store (training what
is missing) and writes its report under ``reports_dir/<dataset>/``, returning the file written. The command
line (``bench lipschitz``, ``inside``, ``pictures``, ``compare-art``) and ``bench.api`` both call these."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from bench.data import datasets
from bench.errors import ConfigError
from bench.matrix.craft import sample_set
from bench.matrix.preset import load_preset


def preset_models(dataset: str, preset: str, models: Sequence[str] | None, progress: bool):
    """(canonical dataset, model names, stored models) of a preset, training what the store lacks."""
    from models.spec import make_spec
    from models.zoo import obtain

    dataset = datasets.DATASETS.canonical(dataset)
    chosen = load_preset(preset)
    names = tuple(models) if models else chosen.models
    specs = [make_spec(dataset, name, chosen.arch, chosen.train_config()) for name in names]
    return dataset, names, [obtain(spec, progress=progress) for spec in specs]


def lipschitz(
    dataset: str,
    preset: str = "paper",
    models: Sequence[str] | None = None,
    reports_dir: Path = Path("reports"),
    progress: bool = True,
) -> Path:
    """Per-layer Lipschitz upper bounds of every model: ``lipschitz.md``."""
    from bench.analyses.lipschitz_report import write_lipschitz_report

    dataset, names, stored = preset_models(dataset, preset, models, progress)
    command = f"bench lipschitz --dataset {dataset}" + (f" --models {','.join(names)}" if models else "")
    return write_lipschitz_report(dataset, stored, Path(reports_dir) / dataset, command)


def inside(
    dataset: str,
    preset: str = "paper",
    models: Sequence[str] | None = None,
    n_samples: int = 200,
    eps: float = 0.3,
    seed: int = 0,
    reports_dir: Path = Path("reports"),
    progress: bool = True,
) -> Path:
    """vu2018 Figures 1-4: per-layer relative change and rank change under PGD against noise: ``inside.md``."""
    from bench.analyses.inside_report import PGD_PARAMS, analyse_model, write_inside_report

    dataset, names, stored = preset_models(dataset, preset, models, progress)
    samples = sample_set(datasets.load(dataset, "test"), n_samples, seed)
    params = {**PGD_PARAMS, "eps": eps}
    results = [analyse_model(m, samples, seed, params, 128) for m in tqdm(stored, desc="inside", disable=not progress)]
    command = f"bench inside --dataset {dataset} --n-samples {n_samples}" + (f" --eps {eps}" if eps != 0.3 else "")
    if models:
        command += f" --models {','.join(names)}"
    return write_inside_report(dataset, results, n_samples, params, Path(reports_dir) / dataset, command)


def pictures(
    dataset: str,
    preset: str = "paper",
    models: Sequence[str] | None = None,
    search_samples: int = 100,
    show: int = 8,
    cw_iterations: int = 1000,
    cw_searches: int = 5,
    seed: int = 0,
    reports_dir: Path = Path("reports"),
    progress: bool = True,
) -> Path:
    """saito2019 Figures 1-3: adversarial examples per model and the smallest eps of a targeted PGD."""
    from bench.analyses.pictures_report import picture_model, write_pictures_report

    if show > search_samples:
        raise ConfigError(f"show={show} pictures is more than search_samples={search_samples} images.")
    dataset, names, stored = preset_models(dataset, preset, models, progress)
    samples = sample_set(datasets.load(dataset, "test"), search_samples, seed)
    plots = Path(reports_dir) / dataset / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    cw = {"c": 0.1, "binary_search_steps": cw_searches, "max_iter": cw_iterations}
    results = [
        picture_model(m, samples, show, seed, cw, plots) for m in tqdm(stored, desc="pictures", disable=not progress)
    ]
    command = f"bench pictures --dataset {dataset} --search-samples {search_samples} --show {show} --seed {seed}"
    if (cw_iterations, cw_searches) != (1000, 5):
        command += f" --cw-iterations {cw_iterations} --cw-searches {cw_searches}"
    if models:
        command += f" --models {','.join(names)}"
    return write_pictures_report(dataset, results, show, Path(reports_dir) / dataset, command)


def compare_art(
    dataset: str,
    preset: str = "paper",
    n_samples: int = 200,
    cw_samples: int = 20,
    cw_iterations: int = 100,
    cw_searches: int = 5,
    seed: int = 0,
    reports_dir: Path = Path("reports"),
    progress: bool = True,
) -> Path:
    """Our O:SOFTMAX:CE estimator and attacks beside ART's stock ones, on the same model, images and seed."""
    from bench.analyses.compare_art import compare_report
    from models.estimator import make_estimator

    dataset, _, (stored,) = preset_models(dataset, preset, ["O:SOFTMAX:CE"], progress)
    est = make_estimator(stored.spec, stored.network, tuple(stored.meta["input_shape"]), stored.meta["n_classes"])
    samples = sample_set(datasets.load(dataset, "test"), n_samples, seed)
    cw = {"c": 0.01, "binary_search_steps": cw_searches, "max_iter": cw_iterations}
    command = f"bench compare-art --dataset {dataset} --n-samples {n_samples} --cw-samples {cw_samples}"
    command += f" --cw-iterations {cw_iterations} --cw-searches {cw_searches} --seed {seed}"
    title = (
        f"# {dataset}: our parts beside ART's stock parts\n\nGenerated by `{command}`; do not edit by hand. "
        f"Model {stored.meta['name']} (store key {stored.spec.key()}); {n_samples} seeded test images "
        f"({cw_samples} for CW: c = 0.01, {cw_searches} x {cw_iterations} iterations); seed {seed}."
    )
    text = compare_report(est, samples.x.numpy(), samples.y.numpy(), seed, cw_samples, cw, title)
    path = Path(reports_dir) / dataset / "compare_art.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
