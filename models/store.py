"""The model store: trained weights keyed by the hash of their whole configuration.

Layout: ``<BENCH_HOME>/models/<key>/model.safetensors`` (tensors only: a checkpoint is data, never
code, so nothing is unpickled) and ``meta.json`` (the configuration, clean accuracy, training
seconds, versions, commit). A model is written to a temporary folder and renamed into place, so an
interrupted training never leaves a half-written entry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from bench.errors import StoreError
from bench.paths import bench_home
from bench.provenance import git_commit, machine, versions
from models.checkpoint import replace_folder
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

    def has(self, spec: ModelSpec) -> bool:
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
        codebook = getattr(network.head, "codebook", None)
        if codebook is not None and fingerprint(codebook) != spec.codebook:
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
        if meta.get("format") != FORMAT_VERSION:
            raise StoreError(f"{folder / META} has store format {meta.get('format')}; expected {FORMAT_VERSION}.")
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
