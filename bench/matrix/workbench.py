"""The state of one process that runs craft groups: its models (trained into the store when missing), its sample
sets, what passes cost, and each cell's stored identity. The serial runner holds one; so does each worker of a
distributed run, built from the same options and specs, so that a group gives the same records wherever it runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.data import datasets
from bench.errors import StoreError
from bench.matrix.craft import Crafter, SampleSet, sample_set
from bench.matrix.group_run import GroupInputs
from bench.matrix.groups import CraftGroup
from bench.matrix.passes import BEST_BATCHES, Prices
from bench.matrix.plan import Cell, MatrixOptions
from bench.provenance import git_commit, versions
from bench.results.metrics import wilson_interval
from models.estimator import BenchClassifier, make_estimator
from models.external import ExternalModel
from models.inference import accuracy
from models.spec import ModelSpec
from models.store import ModelStore
from models.zoo import obtain

CLEAN_CHECK_IMAGES = 1000  # a forward pass over these when a stored model is loaded: under a second on a CPU
Z999 = 3.290527  # a 99.9% interval: a healthy model must not fail the check by chance
_PRICES: dict[tuple[str, str], Prices] = {}  # (model key, device) -> its prices, for every run of this process


class Workbench:
    def __init__(
        self, options: MatrixOptions, specs: dict, out_dir: Path, model_store: ModelStore | None = None
    ) -> None:
        self.options = options
        self.model_store = model_store or ModelStore()
        self.crafter = Crafter(out_dir / "adversarial", options.batch_size)
        self._estimators: dict[str, BenchClassifier] = {}
        self._samples: dict[tuple[int, int], SampleSet] = {}
        self._test: datasets.Split | None = None
        self._specs = specs

    def add_specs(self, specs: dict) -> None:
        """More models (label -> spec) this process may be asked for: a worker learns them group by group."""
        self._specs.update(specs)

    def estimator(self, spec: ModelSpec | ExternalModel) -> BenchClassifier:
        key = spec.key()
        if key not in self._estimators and isinstance(spec, ExternalModel):
            self._estimators[key] = spec.estimator(self.options.device)
        if key not in self._estimators:
            o = self.options
            stored = obtain(
                spec,
                self.model_store,
                data_dir=o.data_dir,
                device=o.device,
                codebook_key=o.codebook_key,
                progress=o.progress,
            )
            self._check_clean_accuracy(spec, stored)
            input_shape = tuple(stored.meta["input_shape"])
            est = make_estimator(spec, stored.network, input_shape, stored.meta["n_classes"], o.device)
            self._estimators[key] = est
        return self._estimators[key]

    def _check_clean_accuracy(self, spec: ModelSpec, stored) -> None:
        """A stored model must still be the model its meta.json describes: its accuracy on the first images of the
        test split within sampling error (a 99.9% Wilson interval) of the stored clean accuracy. Weights swapped,
        damaged or decoded with another codebook key would otherwise be attacked, and every number of its cells
        would be wrong without a word."""
        meta = stored.meta
        n = min(CLEAN_CHECK_IMAGES, meta["n_test"])
        samples = self.sample_set(n, 0)
        hits = round(accuracy(stored.network, samples.x, samples.y, device=self.options.device) * n)
        low, high = wilson_interval(hits, n, z=Z999)
        if not low <= meta["clean_accuracy"] <= high:
            raise StoreError(
                f"stored model {meta['name']} ({spec.key()}) classifies {hits / n:.3f} of {n} test images correctly "
                f"[{low:.3f}, {high:.3f}], but its meta.json says {meta['clean_accuracy']:.4f}: its weights are not "
                "the ones trained (or the codebook key differs). Retrain it with `bench train ... --force`."
            )

    def group_inputs(self, group: CraftGroup) -> GroupInputs:
        first = group.crafts[0]
        return GroupInputs(
            estimators={label: self.estimator(self._specs[label]) for label in group.models},
            samples=self.sample_set(first.n_samples, first.seed),
            crafter=self.crafter,
            prices=self._prices,
            identity=self.identity,
            device=self.options.device,
        )

    def _prices(self, label: str) -> Prices:
        """What passes cost on this model, by batch size: measured once per model, device and process (a model's
        throughput here does not change between runs, and measuring the best batch takes seconds per model)."""
        key = (self._specs[label].key(), self.options.device)
        if key not in _PRICES:
            probe = self.sample_set(max(BEST_BATCHES), 0).x.to(self.options.device)  # only the time counts
            _PRICES[key] = Prices(self.estimator(self._specs[label]).network, probe)
        return _PRICES[key]

    def sample_set(self, n: int, seed: int) -> SampleSet:
        """n test images drawn by ``seed``: the cell's seed, which the stored record keeps, so the worst case
        can find each record's images again (bench.results.worst_case.image_indices)."""
        if self._test is None:
            self._test = datasets.load(self.options.dataset, "test", self.options.data_dir)
        if (n, seed) not in self._samples:
            self._samples[(n, seed)] = sample_set(self._test, n, seed)
        return self._samples[(n, seed)]

    def identity(self, cell: Cell) -> dict:
        return {
            "cell_hash": cell.hash,
            "name": cell.name,
            "dataset": cell.dataset,
            "model": cell.model,
            "model_key": cell.model_key,
            "setting": cell.setting,
            "source": cell.source,
            "attack": cell.attack,
            "param": cell.param,
            "value": cell.value,
            "config": {**cell.config(), "tables": list(cell.tables), **self._probes(cell)},
            "seed": cell.seed,
            **self.provenance(),
        }

    def _probes(self, cell: Cell) -> dict:
        """What the models were, without the code hashes of plugins (stored, not hashed): the gate compares a model
        retrained from edited code by its rates, but one trained otherwise (epochs, architecture) as changed."""
        probes = {"model_probe": self._specs[cell.model].probe()}
        if cell.source:
            probes["source_probe"] = self._specs[cell.source].probe()
        return probes

    def provenance(self) -> dict:
        return {
            "device": self.options.device,
            "commit_id": git_commit(),
            "versions": versions(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
