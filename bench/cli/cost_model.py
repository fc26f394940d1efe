"""`bench cost-model`: what the papers' full runs cost on 1, 8 and 64 GPUs (bench.analyses.cost_model).

The passes per image come from a results store; the GPU throughput is an assumption, printed beside the table.
"""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import BenchCommand
from bench.errors import ConfigError

EPILOG_COST_MODEL = """
\b
Examples:
  bench cost-model                                   # the table and its assumptions, printed
  bench cost-model --measure-here --write docs/cost-model.md
  bench cost-model --throughput mnist=20000,cifar10=15000 --gpus 1,4,16
  bench cost-model --images 1000 --shard-images 0    # 1,000 images per cell, each cell one task

\b
Rows: the paper preset's matrix on MNIST and on CIFAR-10 (DenseNet-BC), vu2018's PGD adversarial training,
and all of them together. Each craft group on each shard of its images is one task, each model's training
one task; tasks go longest first to the GPU free first, so 1 GPU is the sum of the tasks and no number of
GPUs beats the longest one. Passes per image are those the store recorded per craft (the attack's bound
where it has none). Throughput is images/s of a forward and a backward pass on one GPU: no GPU was
measured, so it is an assumption; by default an assumed --tflops over the FLOPs counted on the networks.
"""


def _positive_ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{option} {text}: expected whole numbers separated by commas, e.g. 1,8,64.") from None


def _throughput(text: str | None, keys: tuple[str, ...]) -> dict[str, float]:
    """``mnist=15000,cifar10=11500`` -> {key: images/s}; unknown keys and non-numbers refused by name."""
    found: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        if key.strip() not in keys:
            raise ConfigError(f"--throughput {part}: unknown key {key.strip()!r}; expected one of {', '.join(keys)}.")
        try:
            found[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--throughput {part}: expected KEY=images per second, e.g. mnist=15000.") from None
    return found


@click.command("cost-model", cls=BenchCommand, epilog=EPILOG_COST_MODEL)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=Path("reports/mnist/store"),
    show_default=True,
    help="Results store whose recorded passes per image price the matrices (read only).",
)
@click.option("--images", type=int, default=10_000, show_default=True, help="Images per cell (1..10000).")
@click.option(
    "--shard-images", type=int, default=1_000, show_default=True, help="Images per task; 0: each cell one task."
)
@click.option("--gpus", default="1,8,64", show_default=True, metavar="N,...", help="GPU counts, one column each.")
@click.option(
    "--throughput",
    default=None,
    metavar="KEY=N,...",
    help="Assumed images/s of forward+backward passes on one GPU: mnist (DenseNet-BC, 28x28x1), cifar10 "
    "(DenseNet-BC, 32x32x3), vu2018 (Table I CNN, 28x28x1). Default: --tflops over the counted FLOPs.",
)
@click.option(
    "--tflops",
    type=float,
    default=5.0,
    show_default=True,
    help="Assumed sustained 10^12 FLOP/s of one GPU on these networks: a guess, a fraction of a data-centre "
    "GPU's FP32 peak (tens of TFLOP/s), as layers this narrow keep a GPU far below it.",
)
@click.option(
    "--forward-share",
    type=float,
    default=1 / 3,
    show_default="1/3",
    help="Share of a forward+backward pair's time a forward pass alone takes.",
)
@click.option(
    "--densenet-depth",
    type=int,
    default=40,
    show_default=True,
    help="DenseNet-BC depth whose FLOPs the default throughput divides (6n + 4; saito2019 gives none).",
)
@click.option("--training-steps", type=int, default=100_000, show_default=True, help="vu2018's training steps.")
@click.option("--measure-here", is_flag=True, help="Also measure this machine's CPU throughput, as a reference.")
@click.option("--write", "write", type=click.Path(path_type=Path), default=None, help="Write the page here too.")
def cost_model(
    store: Path,
    images: int,
    shard_images: int,
    gpus: str,
    throughput: str | None,
    tflops: float,
    forward_share: float,
    densenet_depth: int,
    training_steps: int,
    measure_here: bool,
    write: Path | None,
) -> None:
    """The papers' full runs on 1, 8 and 64 GPUs: a table from measured passes and an assumed throughput."""
    from bench.analyses import cost_model as cm
    from bench.matrix.measured import measured_passes
    from bench.results.store import read_records, store_file

    given = _throughput(throughput, cm.THROUGHPUT_KEYS)
    defaults = cm.default_throughput(tflops, densenet_depth)
    a = cm.Assumptions(
        images=images,
        shard_images=shard_images,
        gpus=_positive_ints(gpus, "--gpus"),
        throughput={k: given.get(k, defaults[k][0]) for k in cm.THROUGHPUT_KEYS},
        throughput_from={k: "--throughput" if k in given else defaults[k][1] for k in cm.THROUGHPUT_KEYS},
        forward_share=forward_share,
        training_steps=training_steps,
        densenet_depth=densenet_depth,
    )
    cm.check(a)  # before the store is read
    store_file(store)  # refuses a path without a results store, naming it
    measured = measured_passes(read_records(store))
    matrices = {dataset: cm.paper_groups(dataset, measured) for dataset in cm.DATASETS}
    training = cm.vu2018_training()
    rows = cm.cost_table(matrices, training, a)
    command = _command()
    here = cm.measure_here(densenet_depth) if measure_here else None
    page = cm.render(rows, matrices, training, a, store=str(store), command=command, here=here)
    click.echo(page, nl=False)
    if write is not None:
        if not write.parent.is_dir():
            raise ConfigError(f"--write {write}: the folder {write.parent} does not exist; create it first.")
        write.write_text(page)
        click.echo(f"wrote {write}", err=True)


def _command() -> str:
    """The command line that wrote the page: the options given on it, in the order of --help."""
    ctx = click.get_current_context()
    parts = ["bench cost-model"]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        flag, value = param.opts[0], ctx.params[param.name]
        parts.append(flag if value is True else f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)
