import sqlite3

from bench.results.metrics import wilson_interval
from bench.results.store import Record, ResultsStore, encode_indices


def record(h: str, status: str = "ok", rate: float = 0.5) -> Record:
    return Record(
        cell_hash=h,
        name=f"cell {h}",
        dataset="mnist",
        model="O:SOFTMAX:CE",
        model_key="k",
        setting="whitebox_untargeted",
        source=None,
        attack="fgsm",
        param="eps",
        value=0.1,
        config={"a": 1},
        status=status,
        rate=rate,
        n=10,
        hits=5,
        per_example=b"\x01",
    )


def test_records_round_trip_with_numbers_as_numbers(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put(record("a"))
    (got,) = store.records()
    assert got.rate == 0.5 and isinstance(got.n, int) and got.config == {"a": 1} and got.per_example == b"\x01"
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        assert db.execute("SELECT typeof(rate), typeof(n) FROM results").fetchone() == ("real", "integer")


def test_only_cells_that_finished_without_error_count_as_finished(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put(record("a"))
    store.put(record("b", status="error", rate=None))
    assert store.finished() == {"a"}
    store.put(record("b"))  # a retry replaces the error
    assert store.finished() == {"a", "b"} and len(store.records()) == 2


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(5, 10)
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634
    assert wilson_interval(0, 20)[0] == 0.0 and 0.16 < wilson_interval(0, 20)[1] < 0.17
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_eps_plot_takes_a_rate_of_zero_whose_interval_starts_a_rounding_error_above_it(tmp_path):
    from dataclasses import replace

    from bench.reports.plots import eps_plots

    low, high = wilson_interval(0, 500)
    cells = [
        replace(record("a", rate=0.0), value=0.1, metric="accuracy", ci_low=low + 1e-17, ci_high=high, n=500),
        replace(record("b", rate=0.2), value=0.05, metric="accuracy", ci_low=0.17, ci_high=0.24, n=500),
    ]
    (path,) = eps_plots(cells, tmp_path)  # matplotlib refuses a negative error bar
    assert path.stat().st_size > 1000


def test_a_store_from_before_image_indices_gains_the_column_and_reads_none(tmp_path):
    """A store written by an older bench (schema 1 without image_indices) opens, keeps its rows, and stores indices."""
    from bench.results import schema

    old = tmp_path / "old.sqlite"
    columns = schema.COLUMNS.replace("image_indices BLOB,", "")
    with sqlite3.connect(old) as db:
        db.execute(f"CREATE TABLE results ({columns})")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        row = {**{k: None for k in ("source", "param", "value")}, "cell_hash": "o", "name": "old", "dataset": "mnist",
               "model": "m", "model_key": "k", "setting": "s", "attack": "fgsm", "config": "{}", "status": "ok",
               "versions": "{}"}  # fmt: skip
        db.execute(f"INSERT INTO results ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    store = ResultsStore(old)
    (got,) = store.records()
    assert got.name == "old" and got.image_indices is None and got.indices() is None
    new = record("n")
    new.image_indices = encode_indices([3, 1, 4, 1_000_000])
    store.put(new)
    assert store.records(cell_hash="n")[0].indices().tolist() == [3, 1, 4, 1_000_000]


def _make_stores(folder: str, count: int) -> None:
    for i in range(count):
        ResultsStore(f"{folder}/r{i}.sqlite")


def test_a_store_being_made_is_never_seen_without_its_tables(tmp_path):
    """Two runs started together on one --out: the second may open the store while the first is making it, and
    must find its tables there (CI once saw 'an SQLite file but not a results store')."""
    import multiprocessing
    import time

    from bench.results.store import read_records

    count = 40
    maker = multiprocessing.get_context("spawn").Process(target=_make_stores, args=(str(tmp_path), count))
    maker.start()
    seen = 0
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        path = tmp_path / f"r{seen}.sqlite"
        if path.exists():
            assert read_records(path) == []  # StoreError here if the file showed before its tables
            seen += 1
    maker.join(timeout=60)
    assert maker.exitcode == 0 and seen == count
    assert not list(tmp_path.glob("*.draft*"))  # nothing of the making left behind
