"""Helpers shared by the commands: the one-line error, devices, comma-separated lists."""

from __future__ import annotations

import click

from bench.errors import BenchError


class UserError(click.ClickException):
    """A BenchError shown as one line, exit status 2, no traceback."""

    exit_code = 2


class CellsFailed(click.ClickException):
    """A run that finished with failed cells: its report is written, but the run is not a success (exit 1)."""

    exit_code = 1


def one_line_errors(invoke, ctx: click.Context):
    """Run a command's ``invoke``, turning a BenchError, or an option value out of its range, into a UserError
    (one line naming the value and what was expected, exit status 2)."""
    try:
        return invoke(ctx)
    except BenchError as exc:
        raise UserError(str(exc)) from exc
    except click.BadParameter as exc:  # click would print the usage lines before it
        raise UserError(exc.format_message()) from exc


def fail_on_failed_cells(failed: list, total: int) -> None:
    """A run with failed cells exits 1 saying how many, after its summary and report (exit 0 would pass for a
    finished run)."""
    if failed:
        raise CellsFailed(f"{len(failed)} of {total} cells failed (FAILED lines above); fix the cause and rerun.")


class RegistryEpilog(click.Command):
    """A command whose epilog lists what the registries hold, built only when help is shown: `bench --help` and
    every command's start stay free of torch and ART imports until a command needs them."""

    def __init__(self, *args, epilog_from=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog_from is not None and self.epilog is None:
            self.epilog = self.epilog_from()
        super().format_epilog(ctx, formatter)


class BenchCommand(click.Command):
    """A command that shows a BenchError as one line even when invoked on its own (outside ``bench.cli.main``)."""

    def invoke(self, ctx: click.Context):
        return one_line_errors(super().invoke, ctx)


def check_device(device: str) -> None:
    import torch

    from bench.errors import ConfigError

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu.")
        return
    raise ConfigError(f"device {device!r} is not cpu or cuda[:N].")


def split(values: tuple[str, ...]) -> tuple[str, ...] | None:
    items = tuple(v.strip() for value in values for v in value.split(",") if v.strip())
    return items or None


def parse_params(pairs: tuple[str, ...]) -> dict[str, float]:
    """``("gamma=3", "s=10")`` as numbers; a pair that is not NAME=NUMBER is named."""
    from bench.errors import ConfigError

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--param {pair!r}: expected NAME=NUMBER, e.g. gamma=3.") from None
        if not sep or not name.strip():
            raise ConfigError(f"--param {pair!r}: expected NAME=NUMBER, e.g. gamma=3.")
    return out
