"""`bench train` and `bench models`: the model zoo and its store."""

from __future__ import annotations

from pathlib import Path

import click
from tabulate import tabulate

from bench.cli.common import RegistryEpilog, check_device, parse_params

EPILOG_TRAIN = """
\b
Examples:
  bench train --dataset mnist --model R:TANH:MSE --arch cnn
  bench train --dataset mnist --model all
  bench train --dataset mnist --model lmcl_s10_m0.3 --pgd-at --epochs 10
  bench train --dataset mnist --model hinge --fgsm-rs-at --epochs 10 --batch-size 100 --lr 5e-3
  bench train --dataset fashion_mnist --model O:SOFTMAX:CE --model O:SOFTMAX:MSE

{models}
"""


def _model_lines() -> str:
    """The built-in model kinds with their aliases, from the registry (plugins: `bench ls models`)."""
    from models.kinds import KINDS, built_in_kinds

    lines = ["\b", "Models (the papers' names; lower_snake aliases in brackets; `bench ls models` for plugins):"]
    for name in built_in_kinds():
        kind = KINDS.get(name)
        aliases = f" [{', '.join(kind.aliases)}]" if kind.aliases else ""
        lines.append(f"  {name:<14} {kind.description}{aliases}")
    lines.append("  all            every built-in kind above")
    return "\n".join(lines)


@click.command(cls=RegistryEpilog, epilog_from=lambda: EPILOG_TRAIN.format(models=_model_lines()))
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--model", "models", multiple=True, required=True, help="Model name, repeatable, or 'all'.")
@click.option(
    "--arch",
    default="cnn",
    show_default=True,
    help="cnn (vu2018 Table I), small_cnn (Wong et al. 2020's MNIST CNN) or densenet (DenseNet-BC).",
)
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option(
    "--lr", type=float, default=1e-3, show_default=True, help="Adam's learning rate (the peak of --schedule)."
)
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "constant", "cyclic"]),
    default=None,
    help="Learning rate over the steps: cosine decay to 0, constant, or cyclic (0 up to --lr at 2/5 of the steps, "
    "down to 0). Default: cyclic with --fgsm-rs-at (Wong et al.), else cosine.",
)
@click.option(
    "--seed", type=click.IntRange(0), default=0, show_default=True, help="Seeds the initialisation and batch order."
)
@click.option("--n-train", type=int, default=None, help="Train on a seeded subset of this many images (quick runs).")
@click.option("--pgd-at", is_flag=True, help="PGD adversarial training (Madry et al.) as in vu2018.")
@click.option(
    "--fgsm-rs-at",
    is_flag=True,
    help="FGSM adversarial training from a random start (Wong, Rice and Kolter 2020), with a guard against "
    "catastrophic overfitting whose PGD is --pgd-step and --pgd-iter.",
)
@click.option("--pgd-eps", type=float, default=0.3, show_default=True, help="L-inf radius of the training attack.")
@click.option("--pgd-step", type=float, default=0.01, show_default=True, help="Step size of the training PGD.")
@click.option("--pgd-iter", type=int, default=40, show_default=True, help="Steps of the training PGD (vu2018: 40).")
@click.option("--fgsm-alpha", type=float, default=None, help="FGSM-RS step size; default 1.25 x --pgd-eps.")
@click.option(
    "--guard-drop",
    type=float,
    default=None,
    help="FGSM-RS: stop when the guard's PGD accuracy falls by more than this; default 0.2 (Wong et al.).",
)
@click.option(
    "--guard-checks",
    type=click.IntRange(min=1),
    default=None,
    help="FGSM-RS: stop only after this many checks in a row fell (checks every 100 steps); default 1 (Wong et al.).",
)
@click.option("--codeword-length", type=int, default=128, show_default=True, help="d for R:TANH:MSE.")
@click.option(
    "--codebook-key",
    envvar="BENCH_CODEBOOK_KEY",
    default=None,
    help="Secret key of the R:TANH:MSE codebook (or BENCH_CODEBOOK_KEY); a public default otherwise.",
)
@click.option("--lmcl-s", type=float, default=10.0, show_default=True, help="LMCL scale s.")
@click.option("--lmcl-m", type=float, default=0.3, show_default=True, help="LMCL margin m.")
@click.option("--depth", type=int, default=22, show_default=True, help="DenseNet-BC depth (6n + 4).")
@click.option("--growth", type=int, default=12, show_default=True, help="DenseNet growth rate k.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the model's kind, repeatable (`bench ls models` lists them), e.g. --param gamma=3.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option(
    "--data-dir",
    envvar="BENCH_DATA_DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the dataset files (or BENCH_DATA_DIR).",
)
@click.option("--force", is_flag=True, help="Retrain even if the store has the model.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def train(
    dataset,
    models,
    arch,
    epochs,
    batch_size,
    lr,
    schedule,
    seed,
    n_train,
    pgd_at,
    fgsm_rs_at,
    pgd_eps,
    pgd_step,
    pgd_iter,
    fgsm_alpha,
    guard_drop,
    guard_checks,
    codeword_length,
    codebook_key,
    lmcl_s,
    lmcl_m,
    depth,
    growth,
    params,
    device,
    data_dir,
    force,
    progress,
) -> None:
    """Train models (or take them from the store) and print their clean test accuracy."""
    from models.kinds import built_in_kinds
    from models.spec import TrainConfig, make_spec
    from models.store import ModelStore
    from models.zoo import obtain

    guard = {"guard_drop": guard_drop, "guard_checks": guard_checks}
    adversarial = _adversarial(pgd_at, fgsm_rs_at, pgd_eps, pgd_step, pgd_iter, fgsm_alpha, guard)
    names = built_in_kinds() if any(m.lower() == "all" for m in models) else list(models)
    schedule = schedule or ("cyclic" if fgsm_rs_at else "cosine")  # FGSM-RS's recipe has its one-cycle rate
    plain = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "n_train": n_train}
    config = TrainConfig(**plain, schedule=schedule, adversarial=adversarial)
    kinds = {"codeword_length": codeword_length, "lmcl_s": lmcl_s, "lmcl_m": lmcl_m, "params": parse_params(params)}
    arch_options = {"densenet_depth": depth, "densenet_growth": growth, "codebook_key": codebook_key}
    specs = [make_spec(dataset, name, arch, config, **kinds, **arch_options) for name in names]
    check_device(device)
    store = ModelStore()
    rows = []
    for spec in specs:
        stored = obtain(
            spec, store, data_dir=data_dir, device=device, codebook_key=codebook_key, progress=progress, force=force
        )
        m = stored.meta
        rows.append(
            [spec.name, f"{100 * m['clean_accuracy']:.2f}%", m["n_test"], f"{m['train_seconds']:.0f}", m["key"]]
        )
    click.echo(tabulate(rows, headers=["model", "clean accuracy", "test images", "train s", "store key"]))


def _adversarial(pgd_at, fgsm_rs_at, eps, eps_step, max_iter, alpha, guard: dict):
    """The AdversarialTraining the options describe, or None. Options of a recipe that is off would be ignored,
    and the model trained another way than asked: they are refused."""
    from bench.errors import ConfigError
    from models.spec import AdversarialTraining

    if pgd_at and fgsm_rs_at:
        raise ConfigError("--pgd-at and --fgsm-rs-at are two training recipes; expected one of them.")
    pgd_options = _given("pgd_eps", "pgd_step", "pgd_iter")
    if pgd_options and not (pgd_at or fgsm_rs_at):
        raise ConfigError(
            f"{', '.join(pgd_options)} set PGD adversarial training, which is off; add --pgd-at "
            "(or --fgsm-rs-at, whose guard's PGD they set), or leave them out."
        )
    fgsm_options = _given("fgsm_alpha", "guard_drop", "guard_checks")
    if fgsm_options and not fgsm_rs_at:
        raise ConfigError(f"{', '.join(fgsm_options)} set FGSM-RS training; add --fgsm-rs-at, or leave them out.")
    if fgsm_rs_at:
        return AdversarialTraining(eps, eps_step, max_iter, method="fgsm_rs", alpha=alpha, **guard)
    return AdversarialTraining(eps, eps_step, max_iter) if pgd_at else None


def _given(*names: str) -> list[str]:
    """The options among ``names`` set on the command line (not left at their default)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return [f"--{n.replace('_', '-')}" for n in names if ctx.get_parameter_source(n) != ParameterSource.DEFAULT]


@click.command(name="models")
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the markdown report (e.g. reports/models.md) instead of printing a table.",
)
def list_models(dataset, report) -> None:
    """List the models in the store, or write reports/models.md from it."""
    from bench.data.datasets import DATASETS
    from bench.reports.models import model_rows, write_models_report
    from models.store import ModelStore

    metas = ModelStore().list()
    if dataset:
        wanted = DATASETS.canonical(dataset)
        metas = [m for m in metas if m["spec"]["dataset"] == wanted]
    if report:
        click.echo(f"wrote {write_models_report(metas, report)} ({len(metas)} models)")
        return
    rows = model_rows(metas)
    click.echo(tabulate(rows, headers="keys") if rows else "the store is empty; train with `bench train`")
