"""Datasets through torchvision's classes, found without a network where possible.

Where a dataset's files are looked for, in order:

1. ``--data-dir`` (or the ``BENCH_DATA_DIR`` environment variable); when given, only there.
2. Files that ship with the package (MNIST) or with the system (Debian's
   ``dataset-fashion-mnist`` under ``/usr/share/datasets/fashion-mnist``).
3. The cache under ``BENCH_HOME`` (``~/.cache/bench``), where torchvision downloads to
   when a network allows.

Every split comes back as NCHW float32 pixels in [0, 1] and int64 labels.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tvd

from bench.errors import ConfigError, DatasetError
from bench.paths import bench_home
from bench.registry import Registry

PACKAGE_DATA = Path(__file__).parent  # this folder also holds the shipped MNIST files (mnist/)
DATA_DIR_ENV = "BENCH_DATA_DIR"
SPLITS = ("train", "test")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


@dataclass(frozen=True)
class Split:
    """Images ``x`` (N, C, H, W) float32 in [0, 1] and labels ``y`` (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n_samples: int | None, seed: int) -> Split:
        """``n_samples`` images drawn without replacement, the same on every machine for a seed.

        The draw uses NumPy's PCG64 generator, whose stream does not depend on the platform;
        the chosen indices are kept in dataset order.
        """
        if n_samples is None or n_samples >= len(self):
            return self
        idx = self.subset_indices(n_samples, seed)
        return Split(self.x[idx], self.y[idx])

    def subset_indices(self, n_samples: int, seed: int) -> torch.Tensor:
        """The indices that ``subset`` takes, in dataset order."""
        if n_samples <= 0:
            raise ConfigError(f"n_samples={n_samples} is not a positive number of images; expected 1..{len(self)}.")
        return torch.from_numpy(draw_indices(len(self), n_samples, seed))


def draw_indices(total: int, n_samples: int, seed: int) -> np.ndarray:
    """The first ``n_samples`` of a seeded permutation of ``range(total)``, sorted. Draws are nested as sets
    (a smaller draw is part of a larger one with the same seed), but sorting means not as prefixes: align
    per-image results of two draws by these indices, never by position."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:  # PCG64 would fail late
        raise ConfigError(f"seed={seed!r} is not a seed of the image draw; expected a whole number >= 0.")
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.sort(rng.permutation(total)[: min(n_samples, total)])


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    shape: tuple[int, int, int]
    n_classes: int
    n_train: int  # images in the training split (what a training with n_train = None sees; the dry run's estimate)
    files: tuple[str, ...]
    default_dirs: tuple[Path, ...]
    subdirs: tuple[str, ...]
    """Sub-folders of a searched folder that may hold the files (torchvision's own layouts among them)."""
    how_to_get: str
    load_split: Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]]
    """(folder of the files, or of the download, train?, download?) -> (uint8 images NHWC or NHW, labels)"""
    n_test: int = 10000  # images in the test split: the most a cell can run on


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


def load(name: str, split: str = "test", data_dir: str | Path | None = None, download: bool = True) -> Split:
    """Load one split of a dataset; raises DatasetError naming the paths searched and the files expected."""
    info = DATASETS.get(name)
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}.")
    explicit = data_dir or os.environ.get(DATA_DIR_ENV)
    bases = [Path(explicit)] if explicit else [*info.default_dirs, bench_home() / "datasets" / info.name]
    subs = ("", info.name, info.name.replace("_", "-"), *info.subdirs)
    candidates = list(dict.fromkeys(base / sub for base in bases for sub in subs))
    folder = next((c for c in candidates if _has_files(c, info.files)), None)
    if folder is None and (explicit or not download):
        raise DatasetError(_missing_message(info, candidates))
    if folder is None:
        folder = bench_home() / "datasets" / info.name
        try:
            images, labels = info.load_split(folder, split == "train", True)
        except Exception as exc:  # any network or parse failure becomes one clear message
            raise DatasetError(_missing_message(info, candidates) + f" A download was tried and failed: {exc}") from exc
    else:
        try:
            images, labels = info.load_split(folder, split == "train", False)
        except DatasetError:
            raise  # already names the file
        except Exception as exc:
            raise DatasetError(
                f"the {info.name} files in {folder} could not be read ({type(exc).__name__}: {exc}); "
                "they look corrupt or truncated. "
                f"Expected: {', '.join(info.files)}. {info.how_to_get}"
            ) from exc
    return _to_split(images, labels, info)


def _to_split(images: np.ndarray, labels: np.ndarray, info: DatasetInfo) -> Split:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, :, :, None]
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float().div_(255.0)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if tuple(x.shape[1:]) != info.shape or len(x) != len(y):
        raise DatasetError(
            f"the {info.name} files hold images of shape {tuple(x.shape[1:])} with {len(y)} labels for "
            f"{len(x)} images; expected images of shape {info.shape} and one label each."
        )
    return Split(x, y)


def _has_files(folder: Path, files: tuple[str, ...]) -> bool:
    return all(_find_file(folder, f) is not None for f in files)


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(info: DatasetInfo, searched: list[Path]) -> str:
    where = "; ".join(str(p) for p in searched)
    return (
        f"dataset {info.name!r} not found. Looked in: {where}. Expected the files "
        f"{', '.join(info.files)} (gzip or not). {info.how_to_get}"
    )


def _idx_loader(tv_class: type[tvd.MNIST]) -> Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]]:
    """torchvision's MNIST-style class reads uncompressed files from <root>/<Class>/raw/; stage them there."""

    def load_split(folder: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
        if download:
            root = folder
        else:
            sources = [_find_file(folder, name) for name in IDX_FILES]
            root = bench_home() / "datasets" / "staged" / _stamp(sources)  # one folder per source and version
            raw = root / tv_class.__name__ / "raw"
            for name, source in zip(IDX_FILES, sources, strict=True):
                _stage(source, raw / name)
                _check_idx(raw / name, source, dims=1 if "labels" in name else 3)
        ds = tv_class(root=str(root), train=train, download=download)
        return ds.data.numpy(), ds.targets.numpy()

    return load_split


def _check_idx(staged: Path, source: Path | None, dims: int) -> None:
    """An IDX file's header and length, so that a truncated or foreign file is named (torchvision's own errors
    name neither the file nor the problem)."""
    header = 4 + 4 * dims
    with open(staged, "rb") as f:
        data = f.read(header)
    size = staged.stat().st_size
    if len(data) < header or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != dims:
        raise DatasetError(
            f"{source} is not an IDX file of unsigned bytes with {dims} dimension(s) (its first bytes are "
            f"{data[:4].hex() or 'missing'}; expected 000008{dims:02x}); it looks corrupt or is another file."
        )
    sizes = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    expected = header + int(np.prod(sizes))
    if size != expected:
        raise DatasetError(
            f"{source} holds {size} bytes; its header ({' x '.join(map(str, sizes))}) promises {expected}: "
            "it is truncated or corrupt."
        )


def _stamp(sources: list[Path | None]) -> str:
    text = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sources if p)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stage(source: Path | None, target: Path) -> None:
    """Copy (or gunzip) ``source`` to ``target`` unless an identical-size copy is there; atomic."""
    assert source is not None
    if target.exists():  # the folder is keyed by the sources' paths, sizes and times: same sources, same copy
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as exc:  # a damaged gzip stream: name the file
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"{source} cannot be read ({type(exc).__name__}: {exc}); it looks corrupt or truncated."
        ) from exc
    os.replace(tmp, target)


class _LocalCIFAR10(tvd.CIFAR10):
    """torchvision's CIFAR10 that accepts any files of the right format, not only the canonical ones.

    torchvision checks the md5 of every batch file; a user's own copy (or the small files that
    the tests write) would be refused although the format is the same. Shapes are checked after loading.
    """

    meta = {**tvd.CIFAR10.meta, "md5": None}  # torchvision's check_integrity only tests existence without an md5

    def _check_integrity(self) -> bool:
        return all((Path(self.root) / self.base_folder / f).is_file() for f in CIFAR_FILES)


def _cifar_loader(folder: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    if download:
        ds = tvd.CIFAR10(root=str(folder), train=train, download=True)
    else:  # the files may sit in a folder of any name
        local = type("_CIFAR10Here", (_LocalCIFAR10,), {"base_folder": folder.name})
        ds = local(root=str(folder.parent), train=train, download=False)
    return ds.data, np.asarray(ds.targets)


def _register_all() -> None:
    DATASETS.register(
        "mnist",
        DatasetInfo(
            name="mnist",
            shape=(1, 28, 28),
            n_classes=10,
            n_train=60000,
            files=IDX_FILES,
            default_dirs=(PACKAGE_DATA / "mnist",),
            subdirs=("MNIST/raw",),
            how_to_get="The package ships MNIST: reinstall it, or pass --data-dir to a folder of the four IDX files.",
            load_split=_idx_loader(tvd.MNIST),
        ),
    )
    DATASETS.register(
        "fashion_mnist",
        DatasetInfo(
            name="fashion_mnist",
            shape=(1, 28, 28),
            n_classes=10,
            n_train=60000,
            files=IDX_FILES,
            default_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
            subdirs=("FashionMNIST/raw",),
            how_to_get=(
                "Install Debian's package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
                "or pass --data-dir to a folder holding the four IDX files from Zalando Research."
            ),
            load_split=_idx_loader(tvd.FashionMNIST),
        ),
        aliases=("fashion-mnist", "fmnist", "f-mnist"),
    )
    DATASETS.register(
        "cifar10",
        DatasetInfo(
            name="cifar10",
            shape=(3, 32, 32),
            n_classes=10,
            n_train=50000,
            files=CIFAR_FILES,
            default_dirs=(),
            subdirs=("cifar-10-batches-py",),
            how_to_get=(
                "Run once on a machine with a network (torchvision downloads it to the cache), or pass "
                "--data-dir to the folder cifar-10-batches-py from the python version of CIFAR-10."
            ),
            load_split=_cifar_loader,
        ),
        aliases=("cifar-10", "cifar"),
    )


_register_all()
