"""Resumable training: the trainer's whole state, written every few minutes as data (safetensors and JSON, never
a pickle), so a killed training resumes at the batch where it stopped and ends with the same weights as a
training never interrupted (a PGD adversarial training runs for hours on a CPU, and for hours on a GPU at
vu2018's 100,000 steps).

The state: the network's weights, Adam's moments and step counts, the learning rate, the seeded generator
(which draws every epoch's order and every PGD random start), the epoch's order, and the loop's counters.
A checkpoint is written to a temporary folder and renamed into place, so a kill while writing leaves the
previous one whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bench.errors import StoreError

TENSORS, STATE = "state.safetensors", "progress.json"
FORMAT_VERSION = 1
EMPTY_TALLY = {"loss": 0.0, "correct": 0, "seen": 0}


@dataclass
class Progress:
    """Where the loop is: the next batch to run and what has been counted so far."""

    epoch: int = 0
    batch: int = 0  # the next batch of ``epoch`` to run
    # summed loss, correct predictions and images: of this epoch (its history entry) and of the curve's window
    epoch_tally: dict[str, float] = field(default_factory=lambda: dict(EMPTY_TALLY))
    window: dict[str, float] = field(default_factory=lambda: dict(EMPTY_TALLY))
    history: list[dict[str, float]] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # training time spent before this process started


def save(
    folder: Path,
    key: str,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    order: torch.Tensor,
    progress: Progress,
) -> None:
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        tensors.update({f"optimizer.{index}.{name}": t.detach().cpu().contiguous() for name, t in state.items()})
    tensors["generator"] = generator.get_state()
    tensors["order"] = order.contiguous()
    meta = {
        "format": FORMAT_VERSION,
        "key": key,
        "lr": [g["lr"] for g in optimizer.param_groups],
        "progress": asdict(progress),
    }

    def write(tmp: Path) -> None:
        save_file(tensors, tmp / TENSORS)
        (tmp / STATE).write_text(json.dumps(meta))

    replace_folder(folder, write)


def replace_folder(final: Path, write: Callable[[Path], None]) -> Path:
    """Have ``write`` fill a temporary sibling of ``final``, flush its files to disk, and rename it into place,
    so a kill at any moment leaves either the old folder or the new one whole (the model store and training
    checkpoints both write this way)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    old = _old(final)
    try:
        write(tmp)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _old(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def recover_folder(final: Path) -> None:
    """Undo what a kill inside ``replace_folder`` left: ``final`` only ever appears whole (by a rename), so with it
    in place a leftover ``.<name>.old`` is stale and removed; without it, the old folder is the last whole one and
    goes back. A leftover .old otherwise blocked every later swap (``Directory not empty``)."""
    old = _old(final)
    if not old.exists():
        return
    if final.exists():
        shutil.rmtree(old)
    else:
        os.replace(old, final)


def load(
    folder: Path,
    key: str,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[torch.Tensor, Progress] | None:
    """Restore a checkpoint of the training ``key`` in place; None when there is none to resume."""
    recover_folder(folder)
    if not (folder / STATE).is_file():
        return None
    try:
        meta = json.loads((folder / STATE).read_text())
        tensors = load_file(folder / TENSORS)
    except Exception as exc:  # a half-copied folder or a foreign file: say which and what to do
        raise StoreError(
            f"training checkpoint {folder} is unreadable ({exc}); delete it to train from the start."
        ) from exc
    if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
        raise StoreError(
            f"training checkpoint {folder} belongs to another configuration or format "
            f"(key {meta.get('key')}, format {meta.get('format')}); delete it to train from the start."
        )
    network.load_state_dict({k.removeprefix("network."): v for k, v in tensors.items() if k.startswith("network.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        if name.startswith("optimizer."):
            _, index, part = name.split(".", 2)
            state.setdefault(int(index), {})[part] = t
    groups = optimizer.state_dict()["param_groups"]
    for group, lr in zip(groups, meta["lr"], strict=True):
        group["lr"] = lr
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    generator.set_state(tensors["generator"])
    return tensors["order"], Progress(**meta["progress"])
