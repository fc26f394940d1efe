"""The results store: one SQLite row per finished cell, written in its own transaction.

SQLite in WAL mode keeps every committed row through a crash or SIGKILL, and a half-finished
cell is never written, so a rerun skips exactly the finished cells. Numbers are stored as numbers;
the cell's whole configuration is kept as JSON beside the columns that reports filter on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from bench.errors import StoreError
from bench.results.identity import DIAGNOSTICS, diagnostic_config, digest
from bench.results.schema import SCHEMA_VERSION, lay_out


@dataclass
class Record:
    """One finished cell. ``rate`` is accuracy (untargeted, transfer) or success rate (targeted)."""

    cell_hash: str
    name: str
    dataset: str
    model: str
    model_key: str
    setting: str
    source: str | None
    attack: str
    param: str | None
    value: float | None
    config: dict[str, Any]
    status: str = "ok"
    metric: str | None = None
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    hits: int | None = None
    clean_accuracy: float | None = None
    l2_mean: float | None = None
    l2_median: float | None = None
    linf_mean: float | None = None
    linf_median: float | None = None
    seconds: float | None = None
    craft_seconds: float | None = None
    craft_reused: bool | None = None
    examples_per_second: float | None = None
    forward_passes: int | None = None
    backward_passes: int | None = None
    pass_seconds: float | None = None
    per_example: bytes | None = None
    error: str | None = None
    seed: int | None = None
    device: str | None = None
    commit_id: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    image_indices: bytes | None = None  # the test-split indices of the images, in the order of per_example
    # its passes priced at the best throughput over batch sizes (bench.matrix.passes.Prices); pass_seconds prices
    # them at the batch the attack ran with, so the two differ by what small batches cost
    best_pass_seconds: float | None = None

    def indices(self) -> np.ndarray | None:
        """The test-split indices the cell ran on, as stored (None for rows written before bench stored them)."""
        return None if self.image_indices is None else np.frombuffer(self.image_indices, dtype="<i4").astype(np.int64)


def encode_indices(indices: Any) -> bytes:
    """Image indices (a tensor or array) as stored: little-endian int32."""
    return np.asarray(indices, dtype="<i4").tobytes()


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a folder; expected an SQLite file (or nothing there yet).")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # --out names a file, or a place that cannot be written
            raise StoreError(
                f"results folder {self.path.parent} cannot be created ({exc}); expected a folder."
            ) from exc
        if self.path.is_file() and self.path.stat().st_size and not _is_sqlite(self.path):
            raise StoreError(f"{self.path} is not an SQLite file; {_EXPECTED}. Move it away or use another --out.")
        if not self.path.exists():
            self._create()
        with self._connect() as db:
            found = lay_out(db)
        if found != str(SCHEMA_VERSION):
            raise StoreError(
                f"results store {self.path} has schema version {found}; this bench writes version {SCHEMA_VERSION}: "
                "use another --out, or the bench that wrote it."
            )

    def _create(self) -> None:
        """Make the store in a file of its own and link it into place, so that a run started beside this one
        (on the same --out) never opens a store whose header is written but whose tables are not yet."""
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.draft")
        try:
            with closing(sqlite3.connect(draft)) as db, db:
                lay_out(db)
            os.link(draft, self.path)
        except (OSError, sqlite3.DatabaseError):  # linked first by the other run; or made in place (below), as before
            pass
        finally:
            draft.unlink(missing_ok=True)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                with db:  # one transaction: committed on success, rolled back on error
                    yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:  # a damaged, truncated or foreign file: name it
            raise StoreError(f"results store {self.path} cannot be used: {exc}; {_EXPECTED}.") from exc

    def put(self, record: Record) -> None:
        with self._connect() as db:
            _insert(db, record)

    def replace_derived(self, dataset: str, attack: str, records: list[Record]) -> None:
        """Swap every stored ``attack`` cell of ``dataset`` for ``records`` in one transaction: derived cells
        (the worst case) are recomputed from the others, and a stale one must not outlive its inputs."""
        with self._connect() as db:
            db.execute("DELETE FROM results WHERE dataset = ? AND attack = ?", (dataset, attack))
            for record in records:
                _insert(db, record)

    def rename(self, names: dict[str, str]) -> int:
        """Give stored cells (hash -> name) the names the code gives them now; returns how many changed."""
        sql = "UPDATE results SET name = ? WHERE cell_hash = ? AND name != ?"
        with self._connect() as db:
            return db.executemany(sql, [(name, h, name) for h, name in names.items()]).rowcount

    def migrate_legacy_hashes(self) -> int:
        """Give the gradient-health rows of older benches (``dg-`` hashes, ``legacy_diagnostic_hash``) the hash and
        configuration that bench gives them now (``bench.results.identity``), so that a run counts them finished;
        returns how many changed. A row whose new hash is already stored gives way to it. Worst-case rows need
        nothing: every run replaces them."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT cell_hash, dataset, model, model_key, attack, seed, config FROM results "
                "WHERE setting = ? AND cell_hash LIKE 'dg-%'",
                (DIAGNOSTICS,),
            ).fetchall()
            moved = 0
            for old, dataset, model, model_key, check, seed, text in rows:
                stored = json.loads(text)
                n, revision = stored.get("n_samples"), stored.get("revision")
                if None in (n, revision, seed) or old != legacy_diagnostic_hash(check, model_key, n, seed, revision):
                    continue  # not a row the legacy scheme wrote: left as it is
                config = diagnostic_config(dataset, model, model_key, check, n, seed, revision)
                new = {**config, "tables": stored.get("tables", [])}
                sql = "UPDATE OR IGNORE results SET cell_hash = ?, config = ? WHERE cell_hash = ?"
                db.execute(sql, (digest(config), json.dumps(new, sort_keys=True), old))
                db.execute("DELETE FROM results WHERE cell_hash = ?", (old,))  # left only where the new hash was taken
                moved += 1
            return moved

    def finished(self) -> set[str]:
        """Hashes of cells that finished without error (errors are retried on the next run)."""
        with self._connect() as db:
            return {h for (h,) in db.execute("SELECT cell_hash FROM results WHERE status = 'ok'")}

    def records(self, **where: Any) -> list[Record]:
        with self._connect() as db:
            return _select(db, where, self.path)

    def put_models(self, metas: list[dict[str, Any]]) -> None:
        """Keep the metadata of the models the cells measured (the model store's meta.json: configuration, clean
        accuracy, training curve), so that a report is a function of the results store alone, wherever it is read."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO models VALUES (?, ?)",
                [(m["key"], json.dumps(m, sort_keys=True)) for m in metas],
            )


def legacy_diagnostic_hash(check: str, model_key: str, n: int, seed: int, revision: int) -> str:
    """The hash older benches gave a gradient-health row, kept only to migrate their stores."""
    text = json.dumps({"check": check, "model_key": model_key, "n": n, "seed": seed, "revision": revision})
    return "dg-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _select(db: sqlite3.Connection, where: dict[str, Any], source: Path) -> list[Record]:
    """The records matching ``where`` (column = value, all of them), by name."""
    clauses = " AND ".join(f"{k} = :{k}" for k in where) or "1"
    db.row_factory = sqlite3.Row
    rows = db.execute(f"SELECT * FROM results WHERE {clauses} ORDER BY name", where).fetchall()
    out = []
    for row in rows:
        data = dict(row)
        for column in ("config", "versions"):
            try:
                data[column] = json.loads(data[column])
            except (TypeError, json.JSONDecodeError):
                data[column] = None
            if not isinstance(data[column], dict):
                raise StoreError(
                    f"results store {source}: cell {data['name']!r} has {column} = {_short(row[column])}; expected "
                    "a JSON object. The row is damaged: delete it (or the store) and rerun the cell."
                )
        _check_numbers(data, source)
        out.append(Record(**data))
    return out


RATES = ("rate", "ci_low", "ci_high", "clean_accuracy")


def _check_numbers(row: dict[str, Any], source: Path) -> None:
    """A stored rate is a number in [0, 1] and a count a whole number, hits at most n: a damaged row is named here
    rather than failing (or passing) in a report or the gate."""
    for column in RATES:
        value = row[column]
        if value is not None and (isinstance(value, (str, bytes)) or not 0 <= value <= 1):
            raise StoreError(
                f"results store {source}: cell {row['name']!r} has {column} = {_short(value)}; expected a number in "
                "[0, 1]. The row is damaged: delete it (or the store) and rerun the cell."
            )
    for column in ("n", "hits"):
        value = row[column]
        if value is not None and (not isinstance(value, int) or value < 0):
            raise StoreError(
                f"results store {source}: cell {row['name']!r} has {column} = {_short(value)}; expected a whole "
                "number >= 0. The row is damaged: delete it (or the store) and rerun the cell."
            )
    if row["n"] is not None and row["hits"] is not None and row["hits"] > row["n"]:
        raise StoreError(
            f"results store {source}: cell {row['name']!r} has hits = {row['hits']} above n = {row['n']}; expected "
            "0 <= hits <= n. The row is damaged: delete it (or the store) and rerun the cell."
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _insert(db: sqlite3.Connection, record: Record) -> None:
    row = asdict(record)
    row["config"] = json.dumps(row["config"], sort_keys=True)
    row["versions"] = json.dumps(row["versions"], sort_keys=True)
    names = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    db.execute(f"INSERT OR REPLACE INTO results ({names}) VALUES ({marks})", row)


# The read path: for exports and other readers of a store that must not change it. ResultsStore creates the
# folder, the file and the tables it is given; these refuse anything that is not already a results store.
STORE_FILE = "results.sqlite"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_EXPECTED = f"expected a results folder holding {STORE_FILE} (bench matrix --out) or the .sqlite file itself"


def store_file(path: str | Path) -> Path:
    """The store file of a results folder, or ``path`` itself when it is a file; StoreError when neither exists."""
    path = Path(path)
    if path.is_dir():
        if not (path / STORE_FILE).is_file():
            raise StoreError(f"results folder {path} holds no {STORE_FILE}; {_EXPECTED}.")
        return path / STORE_FILE
    if not path.exists():
        raise StoreError(f"results store {path} does not exist; {_EXPECTED}.")
    if not _is_sqlite(path):
        raise StoreError(f"{path} is not an SQLite file; {_EXPECTED}.")
    return path


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def read_records(path: str | Path, **where: Any) -> list[Record]:
    """The records of the store at ``path`` (a results folder or its .sqlite file), read without writing a byte.

    SQLite's read-only mode still creates the -wal and -shm files of a WAL store when they are missing (and
    leaves them behind), so a store that no writer holds open is read as immutable; one with a -wal file (a
    writer is at work, or crashed) is read in read-only mode through that writer's files, whose rows count.
    """
    return _read_only(path, lambda db, file: _select(db, where, file))


def read_model_metas(path: str | Path) -> list[dict[str, Any]]:
    """The metadata of the models whose cells the store at ``path`` holds (none for a store written before it kept
    them), read without writing."""

    def metas(db: sqlite3.Connection, file: Path) -> list[dict[str, Any]]:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return (
            [json.loads(m) for (m,) in db.execute("SELECT meta FROM models ORDER BY model_key")]
            if "models" in tables
            else []
        )

    return _read_only(path, metas)


def _read_only(path: str | Path, select) -> Any:
    """``select(db, file)`` on the store at ``path`` (see ``read_records``), read without writing a byte."""
    file = store_file(path)
    wal = file.with_name(file.name + "-wal")
    immutable = not wal.exists()
    found = _read(file, "immutable=1" if immutable else "mode=ro", select)
    if immutable and wal.exists():  # a writer opened the store while it was read as immutable: read again
        found = _read(file, "mode=ro", select)
    return found


def _read(file: Path, mode: str, select) -> Any:
    uri = f"file:{quote(str(file.resolve()))}?{mode}"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"results", "meta"} <= tables:
                raise StoreError(f"{file} is an SQLite file but not a results store (no results or meta table).")
            found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if found is None or found[0] != str(SCHEMA_VERSION):
                version = found[0] if found else "none"
                raise StoreError(
                    f"results store {file} has schema version {version}; this bench reads version {SCHEMA_VERSION}."
                )
            return select(db, file)
    except sqlite3.DatabaseError as exc:  # a damaged file, or a column this Record does not know
        raise StoreError(f"results store {file} cannot be read: {exc}; {_EXPECTED}.") from exc
