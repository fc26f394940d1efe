"""What produced a result: library versions, the commit, the machine."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

_project: dict[str, str] = {}  # the plugins loaded in this process (bench.plugins records them): name -> version


def record_project(name: str, version: str) -> None:
    """Note a plugin of the user's project (its distribution's version, or its file's git commit)."""
    _project[name] = version


def versions() -> dict[str, str]:
    """Library versions, and the version (or commit) of every plugin loaded: a baseline records the user's
    own project beside bench's."""
    return {**_library_versions(), **_project}


@functools.cache
def _library_versions() -> dict[str, str]:
    import art
    import numpy
    import torchvision

    import bench

    return {
        "bench": bench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "adversarial-robustness-toolbox": art.__version__,
        "numpy": numpy.__version__,
    }


@functools.cache
def git_commit() -> str:
    """The commit of the checkout the package runs from, with ``+dirty`` for local changes; ``unknown`` outside git."""
    return commit_of(Path(__file__).resolve().parent)


@functools.cache
def commit_of(here: Path) -> str:
    """The git commit of the checkout holding ``here``, ``+dirty`` with local changes; ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, str | int]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }
