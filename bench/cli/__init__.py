"""The ``bench`` command line.

Every option is validated into frozen specs before any work starts; errors name the bad value
and the valid choices, and exit with status 2 without a traceback.
"""

from __future__ import annotations

import logging

import click

from bench.cli.common import UserError, one_line_errors
from bench.errors import BenchError


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class BenchGroup(click.Group):
    def invoke(self, ctx: click.Context):
        return one_line_errors(super().invoke, ctx)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="PATH|MODULE[:ATTR]",
    help="Load model kinds, losses, attacks or presets from a .py file or module (repeatable; "
    "also BENCH_PLUGINS, comma-separated). Installed entry points (bench.models, bench.losses, bench.attacks, "
    "bench.presets) load always.",
)
@click.version_option(package_name="bench")
def main(verbose: int, plugins: tuple[str, ...]) -> None:
    """A harness for how training loss and target representation change adversarial robustness.

    It trains the model zoo of saito2019 (O:SOFTMAX:CE, O:SOFTMAX:MSE, R:TANH:MSE) and vu2018
    (hinge, LMCL, PGD adversarial training), hands each model to ART as an estimator whose
    gradients come from the model's own loss, and keeps trained models in a store keyed by
    their configuration (BENCH_HOME, default ~/.cache/bench).

    Your own models, losses, attacks and presets plug in without editing the package: see `bench ls`
    and `--plugin`.
    """
    from bench.plugins import load_plugins

    _setup_logging(verbose)
    try:
        load_plugins(plugins)
    except BenchError as exc:
        raise UserError(str(exc)) from exc


def _add_commands() -> None:
    """Each group of commands lives in its own module; this group only collects them."""
    from bench.cli.analyses import benchmarks_report, compare_art, inside, lipschitz, pictures
    from bench.cli.cost_model import cost_model
    from bench.cli.evaluate import evaluate
    from bench.cli.export import export
    from bench.cli.gate import check, write_baseline_command
    from bench.cli.ls import list_registered
    from bench.cli.matrix import matrix, report
    from bench.cli.models import list_models, train

    for command in (train, list_models, matrix, report, check, write_baseline_command, lipschitz, inside, pictures,
                    benchmarks_report, compare_art, list_registered, export, evaluate, cost_model):  # fmt: skip
        main.add_command(command)


_add_commands()
