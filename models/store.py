"""The model store: trained weights keyed by the hash of their whole configuration.

Layout: ``<BENCH_HOME>/models/<key>/model.safetensors`` (tensors only: a checkpoint is data, never
code, so nothing is unpickled) and ``meta.json`` (the configuration, clean accuracy, training
seconds, versions, commit). A model is written to a temporary folder and renamed into place, so an
interrupted training never leaves a half-written entry. ``.<key>.lock`` beside an entry is what a training of it
holds (``ModelStore.training_lock``): two processes that miss the same model train it once, the second loading it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from bench.errors import StoreError
from bench.paths import bench_home
from bench.provenance import git_commit, machine, versions
from models.checkpoint import recover_folder, replace_folder
from models.codebook import fingerprint
from models.network import Network, build_network
from models.spec import ModelSpec
from models.training import TrainedModel

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS, META = "model.safetensors", "meta.json"


@dataclass
class StoredModel:
    spec: ModelSpec
    network: Network
    meta: dict[str, Any]


class ModelStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else bench_home() / "models"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, spec: ModelSpec) -> Path:
        return self.root / spec.key()

    def checkpoint_dir(self, spec: ModelSpec) -> Path:
        """Where a training in progress keeps the state it resumes from (dot-named: never listed as a model)."""
        return self.root / f".training-{spec.key()}"

    @contextmanager
    def training_lock(self, spec: ModelSpec) -> Iterator[None]:
        """Held while ``spec`` is trained and stored: an exclusive ``flock`` on ``.<key>.lock`` beside its entry,
        waited for (with a message) while another process holds it, and let go by the kernel when its holder dies.
        The file stays: removing it would let a third process lock a fresh file while the second waits on the old."""
        path = self.root / f".{spec.key()}.lock"
        with open(path, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("waiting for another process training %s (lock %s)", spec.name, path)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def has(self, spec: ModelSpec) -> bool:
        recover_folder(self.path(spec))  # a save killed between its two renames left the model as .<key>.old
        return (self.path(spec) / META).is_file()

    def save(
        self, spec: ModelSpec, trained: TrainedModel, input_shape: tuple[int, ...], n_classes: int, device: str
    ) -> Path:
        meta = {
            "format": FORMAT_VERSION,
            "key": spec.key(),
            "name": spec.name,
            "spec": spec.to_dict(),
            "input_shape": list(input_shape),
            "n_classes": n_classes,
            "clean_accuracy": trained.clean_accuracy,
            "n_test": trained.n_test,
            "train_seconds": trained.train_seconds,
            "history": trained.history,
            "curve": trained.curve,
            "device": device,
            "machine": machine(),
            "versions": versions(),
            "commit": git_commit(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        state = {k: v.detach().cpu().contiguous() for k, v in trained.network.state_dict().items()}

        def write(tmp: Path) -> None:
            save_file(state, tmp / WEIGHTS)
            (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True))

        final = replace_folder(self.path(spec), write)
        return final

    def load(self, spec: ModelSpec) -> StoredModel:
        folder = self.path(spec)
        recover_folder(folder)
        meta = self.read_meta(folder)
        if meta["spec"] != spec.to_dict():
            raise StoreError(
                f"checkpoint {folder} was trained with a different configuration than asked for; "
                f"stored {meta['spec']}, asked {spec.to_dict()}. Retrain with `bench train ... --force`."
            )
        network = build_network(spec, tuple(meta["input_shape"]), meta["n_classes"], placeholder_codebook=True)
        try:
            state = load_file(folder / WEIGHTS)
            network.load_state_dict(state, strict=True)
        except Exception as exc:  # a safetensors or shape error: name the file, say what to do
            raise StoreError(f"checkpoint {folder / WEIGHTS} is unreadable or does not fit {spec.name}: {exc}") from exc
        broken = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
        if broken:  # a diverged or damaged model would be attacked at chance accuracy, with no warning
            raise StoreError(
                f"checkpoint {folder / WEIGHTS} holds NaN or infinite weights ({', '.join(broken[:3])}); expected "
                f"finite weights. Retrain it with `bench train ... --force`."
            )
        codebook = getattr(network.head, "codebook", None)  # O:TANH:MSE's fixed targets are no keyed codebook
        if codebook is not None and spec.kind.codebook and fingerprint(codebook) != spec.codebook:
            raise StoreError(f"checkpoint {folder} holds a codebook that does not match its configuration.")
        network.eval()
        return StoredModel(spec, network, meta)

    def read_meta(self, folder: Path) -> dict[str, Any]:
        try:
            meta = json.loads((folder / META).read_text())
        except FileNotFoundError:
            raise StoreError(f"no model at {folder}; train it with `bench train`.") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{folder / META} is not valid JSON ({exc}); delete the folder and retrain.") from exc
        if not isinstance(meta, dict):
            raise StoreError(f"{folder / META} holds a JSON {type(meta).__name__}; expected an object. Retrain it.")
        if meta.get("format") != FORMAT_VERSION:
            raise StoreError(f"{folder / META} has store format {meta.get('format')}; expected {FORMAT_VERSION}.")
        problem = _meta_problem(meta)
        if problem:
            raise StoreError(f"{folder / META} has {problem}; delete the folder and retrain (`bench train --force`).")
        return meta

    def list(self) -> list[dict[str, Any]]:
        """The metadata of every complete entry, sorted by name."""
        metas = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / META).is_file():
                continue
            try:
                metas.append(self.read_meta(folder))
            except StoreError as exc:
                log.warning("skipping a store entry: %s", exc)
        return sorted(metas, key=lambda m: m["name"])


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


# what loads, `bench models` and reports/models.md read
REQUIRED_META = ("key", "name", "spec", "input_shape", "n_classes", "clean_accuracy", "n_test", "train_seconds")
REQUIRED_META += ("device", "machine", "versions", "commit")


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What a meta.json lacks or holds of the wrong kind (the fields that loads, listings and reports read)."""
    for key in REQUIRED_META:
        if key not in meta:
            return f"no {key!r}"
    shape = meta["input_shape"]
    if not isinstance(shape, list) or not shape or not all(_positive_int(d) for d in shape):
        return f"input_shape = {shape!r}; expected a list of positive whole numbers, e.g. [1, 28, 28]"
    if not _positive_int(meta["n_classes"]) or meta["n_classes"] < 2:
        return f"n_classes = {meta['n_classes']!r}; expected a whole number >= 2"
    accuracy = meta["clean_accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        return f"clean_accuracy = {accuracy!r}; expected a number in [0, 1]"
    if not _positive_int(meta["n_test"]) or isinstance(meta["train_seconds"], (bool, str)):
        return f"n_test = {meta['n_test']!r}, train_seconds = {meta['train_seconds']!r}; expected numbers"
    spec = meta["spec"]
    if not isinstance(spec, dict) or not {"dataset", "arch", "train"} <= set(spec) or not isinstance(meta["name"], str):
        return f"spec = {str(spec)[:40]!r}; expected the model's configuration (dataset, arch, train, ...)"
    return None
