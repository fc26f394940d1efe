"""The results frame and `bench export`, on a small real store and on the committed MNIST store (read-only)."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
from io import BytesIO, StringIO
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli.export import export
from bench.errors import StoreError, UnknownNameError
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import MatrixRunner
from bench.results.frame import FIXED, IDENTITY, MEASUREMENTS, PROVENANCE, records_frame, results_frame
from bench.results.store import ResultsStore, read_records
from bench.results.worst_case import store_worst_cases
from tests.conftest import made_older, preset_text

COMMITTED = Path(__file__).resolve().parent.parent / "reports" / "mnist" / "store" / "results.sqlite"
# the columns results.csv had before the parameter columns: a reader of any of them must still find it
OLD_CSV_COLUMNS = (
    "cell_hash name dataset model model_key setting source attack param value status metric rate ci_low ci_high n "
    "hits clean_accuracy l2_mean l2_median linf_mean linf_median seconds craft_seconds craft_reused "
    "examples_per_second forward_passes backward_passes pass_seconds error seed device commit_id created"
).split()

PRESET = preset_text(
    "frame",
    ["O:SOFTMAX:CE"],
    {"fgsm": 10, "pgd": 10, "deepfool": 10},
    [
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.05, 0.1]}},
        {"setting": "whitebox_untargeted", "attack": "pgd", "params": {"eps_step": 0.05}, "sweep": {"eps": [0.1]}},
        {"setting": "whitebox_targeted", "attack": "fgsm", "sweep": {"eps": [0.3]}},
        {"setting": "whitebox_untargeted", "attack": "deepfool", "sweep": {"max_iter": [2]}},
    ],
    seed=0,
    diagnostic_samples=20,
    params={"pgd": {"max_iter": 3}},
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(results folder, plan) of a real run: five attack cells, three gradient-health cells, one worst case."""
    folder = tmp_path_factory.mktemp("frame_run")
    (folder / "frame.toml").write_text(PRESET)
    options = MatrixOptions(dataset="mnist", preset=str(folder / "frame.toml"), progress=False)
    plan = make_plan(options)
    store = ResultsStore(folder / "results.sqlite")
    MatrixRunner(options, store, folder).run(plan)
    store_worst_cases(store, "mnist")
    return folder, plan


def _snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


@pytest.fixture()
def committed():
    """The committed store's path, checked unchanged (bytes, mtime, no file beside it) after the test."""
    before = _snapshot(COMMITTED)
    yield COMMITTED
    assert _snapshot(COMMITTED) == before


def test_each_parameter_column_holds_the_value_of_its_cell(tiny_run):
    folder, plan = tiny_run
    frame = results_frame(folder).set_index("cell_hash")
    params = sorted({k for c in plan.cells for k, _ in c.params})
    assert set(params) == {"eps", "eps_step", "max_iter", "nb_grads", "epsilon"}
    for cell in plan.cells:
        row = frame.loc[cell.hash]
        given = dict(cell.params)
        for name in params:  # every parameter of the cell, NaN for those its attack lacks
            assert row[name] == given[name] if name in given else math.isnan(row[name]), (cell.name, name)
        assert (row["n_samples"], row["targeted"], row["attack"]) == (10, cell.targeted, cell.attack)
    assert frame.loc[[c.hash for c in plan.cells if c.attack == "fgsm"], "eps"].sort_values().tolist() == [
        0.05,
        0.1,
        0.3,
    ]


def test_the_other_shapes_of_row_get_their_columns(tiny_run):
    folder, plan = tiny_run
    frame = results_frame(folder)
    assert len(frame) == len(ResultsStore(folder / "results.sqlite").records()) == len(plan.cells) + 3 + 1
    health = frame[frame.setting == "diagnostics"]
    assert sorted(health.attack) == ["gradient_vanishing", "gradient_zero", "output_saturated"]
    assert (health.n_samples == 20).all() and not health.targeted.any()
    assert health[["eps", "max_iter", "eps_step"]].isna().all().all()
    (worst,) = frame[frame.attack == "worst_case"].itertuples()
    assert worst.eps == worst.value == 0.1 and pd.isna(worst.n_samples) and worst.n == 10  # fgsm and pgd at 0.1
    assert math.isnan(worst.max_iter)


def test_columns_come_in_the_documented_order_with_numbers_as_numbers(tiny_run):
    frame = results_frame(tiny_run[0])
    params = [c for c in frame.columns if c not in FIXED]
    assert list(frame.columns) == [*IDENTITY, *params, *MEASUREMENTS, *PROVENANCE] and params == sorted(params)
    assert not {"per_example", "config", "versions"} & set(frame.columns)
    assert frame.rate.dtype == "float64" and frame.eps.dtype == "float64" and frame.targeted.dtype == "boolean"
    assert str(frame.n.dtype) == "Int64" and str(frame.forward_passes.dtype) == "Int64"
    numbers = [c for c in (*IDENTITY, *params, *MEASUREMENTS) if c in ("value", "n_samples", "seed", *params)]
    numbers += [c for c in MEASUREMENTS if c not in ("status", "metric", "error")]
    assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in numbers), frame.dtypes
    assert frame.name.is_monotonic_increasing


def test_a_store_object_its_folder_and_its_file_give_the_same_frame(tiny_run):
    folder, _ = tiny_run
    by_folder = results_frame(folder)
    pd.testing.assert_frame_equal(results_frame(ResultsStore(folder / "results.sqlite")), by_folder)
    pd.testing.assert_frame_equal(results_frame(folder / "results.sqlite", dataset="MNIST"), by_folder)
    assert results_frame(folder, dataset="fashion_mnist").empty
    with pytest.raises(UnknownNameError, match="mnsit"):
        results_frame(folder, dataset="mnsit")


def test_the_committed_store_reads_one_row_per_record_without_being_touched(committed, tmp_path):
    frame = results_frame(committed.parent)
    copy = tmp_path / "copy.sqlite"  # counted and compared on a copy: nothing here opens the committed file to write
    shutil.copyfile(committed, copy)
    with sqlite3.connect(copy) as db:
        assert len(frame) == db.execute("SELECT count(*) FROM results").fetchone()[0]
        swept = dict(db.execute("SELECT cell_hash, value FROM results WHERE param = 'eps'").fetchall())
    eps = frame.set_index("cell_hash").eps
    assert len(swept) > 100 and all(eps[h] == v for h, v in swept.items())
    assert {"c", "max_iter", "binary_search_steps", "eps_step"} <= set(frame.columns)


def test_a_store_a_writer_holds_open_is_read_with_the_rows_it_committed(tiny_run, tmp_path):
    shutil.copyfile(tiny_run[0] / "results.sqlite", tmp_path / "results.sqlite")
    writer = sqlite3.connect(tmp_path / "results.sqlite")  # the store is in WAL mode: its commits go to the -wal
    try:
        with writer:
            writer.execute("CREATE TEMP TABLE held AS SELECT * FROM results LIMIT 1")
            writer.execute("UPDATE held SET cell_hash = 'held', name = 'mnist/zz-held-in-the-wal'")
            writer.execute("INSERT INTO results SELECT * FROM held")
        files = sorted(os.listdir(tmp_path))
        assert "results.sqlite-wal" in files  # the row is not in the main file yet
        assert results_frame(tmp_path).name.iloc[-1] == "mnist/zz-held-in-the-wal"
        assert sorted(os.listdir(tmp_path)) == files
    finally:
        writer.close()
    assert results_frame(tmp_path).name.iloc[-1] == "mnist/zz-held-in-the-wal"  # checkpointed, read as immutable


def _other_schema(tiny_run, tmp_path) -> Path:
    path = tmp_path / "v2.sqlite"
    shutil.copyfile(tiny_run[0] / "results.sqlite", path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    return path


def _bad_sources(tiny_run, tmp_path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "notes.sqlite").write_text("cell,rate\n")
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE t (x)").connection.close()
    return {
        "missing file": (tmp_path / "nowhere" / "results.sqlite", "does not exist"),
        "missing folder": (tmp_path / "nowhere", "does not exist"),
        "folder without a store": (tmp_path / "empty_folder", "holds no results.sqlite"),
        "not SQLite": (tmp_path / "notes.sqlite", "is not an SQLite file"),
        "another database": (tmp_path / "other.sqlite", "not a results store"),
        "another schema": (_other_schema(tiny_run, tmp_path), "has schema version 2; this bench reads version 1"),
    }


def test_a_source_that_is_not_a_results_store_is_refused_by_name_leaving_nothing_behind(tiny_run, tmp_path):
    for what, (path, expected) in _bad_sources(tiny_run, tmp_path).items():
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        with pytest.raises(StoreError) as caught:
            results_frame(path)
        message = str(caught.value)
        assert str(path) in message and expected in message and "\n" not in message, (what, message)
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, what


def _invoke(*args: str):
    return CliRunner().invoke(export, list(args))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_writes_the_frame_in_each_format(tiny_run, tmp_path, fmt):
    folder, _ = tiny_run
    frame = results_frame(folder)
    out = tmp_path / f"cells.{fmt}"
    out.write_text("an older export")  # replaced whole
    result = _invoke("--results", str(folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {len(frame)} rows x {len(frame.columns)} columns ({fmt}) to {out}" in result.output
    pd.testing.assert_frame_equal(_read_back(out.read_bytes(), fmt, frame.dtypes), frame)
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left


def _read_back(data: bytes, fmt: str, dtypes: pd.Series) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(BytesIO(data))
    if fmt == "csv":
        return pd.read_csv(StringIO(data.decode()), dtype=dtypes.to_dict())
    rows = json.loads(data)
    assert list(rows[0]) == list(dtypes.index)  # the frame's column order, in every object
    return pd.DataFrame(rows).astype(dtypes.to_dict())


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_to_stdout_keeps_the_summary_off_the_table(tiny_run, fmt):
    frame = results_frame(tiny_run[0])
    result = _invoke("--results", str(tiny_run[0]), "--format", fmt, "--out", "-")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(_read_back(result.stdout.encode(), fmt, frame.dtypes), frame)
    assert f"wrote {len(frame)} rows" in result.stderr


def test_export_of_the_committed_store_filters_by_dataset(committed, tmp_path):
    out = tmp_path / "mnist.parquet"
    assert _invoke("--results", str(committed), "--dataset", "MNIST", "--out", str(out)).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), results_frame(committed))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--format", "xml", "--out", "cells.xml"], "Invalid value for '--format': 'xml' is not one of"),
        (["--out", "cells.txt"], "cannot tell the format from the suffix '.txt'"),
        (["--format", "parquet", "--out", "-"], "give --out a file name, not - (stdout)"),
        (["--out", "no_folder/cells.csv"], "the folder no_folder does not exist"),
        (["--out", "cells.csv", "--dataset", "mnsit"], "Did you mean 'mnist'?"),
    ],
)
def test_export_refuses_what_it_cannot_write(tiny_run, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    result = _invoke("--results", str(tiny_run[0]), *args)
    assert result.exit_code == 2 and expected in result.output, result.output
    assert os.listdir(tmp_path) == []


def test_a_failed_export_leaves_the_old_file(tmp_path):
    out = tmp_path / "cells.csv"
    out.write_text("kept")
    result = _invoke("--results", str(tmp_path / "none"), "--out", str(out))
    assert result.exit_code == 2 and f"results store {tmp_path / 'none'} does not exist" in result.output
    assert out.read_text() == "kept" and os.listdir(tmp_path) == ["cells.csv"]


def test_the_report_csv_has_the_frames_columns_and_every_column_it_had(tiny_run, tmp_path):
    from bench.reports.render import _write_csv

    records = read_records(tiny_run[0])
    _write_csv(records, tmp_path / "results.csv", lambda r: "cnn")
    frame = records_frame(records)
    written = pd.read_csv(tmp_path / "results.csv", dtype=frame.dtypes.to_dict())
    pd.testing.assert_frame_equal(written[list(frame.columns)], frame)
    assert set(OLD_CSV_COLUMNS) <= set(written.columns) and "eps" in written.columns


def test_the_report_csv_puts_the_published_number_beside_each_cell(committed, tmp_path):
    from bench.reports.render import _write_csv

    _write_csv(read_records(committed), tmp_path / "results.csv", lambda r: "cnn")
    written = pd.read_csv(tmp_path / "results.csv")
    fgsm = written[(written.name == "mnist/whitebox_untargeted/fgsm[eps=0.1]/O:SOFTMAX:CE")].iloc[0]
    assert fgsm.paper == 0.654  # saito2019 Table 3, from bench/data/reference_results.csv
    published = written.dropna(subset=["paper"])
    assert len(published) and (published["delta"] - (published["rate"] - published["paper"])).abs().max() < 1e-12


def test_no_attack_parameter_is_named_like_a_column():
    from bench.attacks import ATTACKS
    from bench.matrix.preset import PRESETS, load_preset

    names = {k for a in ATTACKS.names() for k in ATTACKS.get(a).defaults}
    for preset in map(load_preset, PRESETS.names()):
        names |= {g.sweep_param for g in preset.groups} | {k for g in preset.groups for k in g.params}
    assert "eps" in names and not names & set(FIXED)


def test_a_plugin_parameter_named_like_a_column_gets_its_own_column():
    """A plugin attack may call a parameter `seed` or `n`: it is shown as param_seed, never over the cell's seed."""
    from dataclasses import replace

    from tests.test_results import record

    cell = replace(record("p"), seed=7, config={"params": {"seed": 3.0, "eps": 0.1}})
    (row,) = records_frame([cell]).to_dict("records")
    assert (row["seed"], row["param_seed"], row["eps"]) == (7, 3.0, 0.1)


def test_a_run_keeps_its_models_metadata_so_a_report_needs_only_the_results_store(tiny_run, tmp_path):
    from bench.reports.dataset import model_metas
    from bench.results.store import read_model_metas
    from models.store import ModelStore

    folder, plan = tiny_run
    kept = read_model_metas(folder)
    assert {m["key"] for m in kept} == {spec.key() for spec in plan.specs.values()}
    assert all(0.0 < m["clean_accuracy"] <= 1.0 for m in kept)
    elsewhere = ModelStore(tmp_path / "empty-model-store")  # a reader's machine: no models
    assert model_metas(folder, elsewhere) == kept
    older = made_older(Path(shutil.copyfile(COMMITTED, tmp_path / "older.sqlite")))
    assert read_model_metas(older) == []  # written before stores kept them: the report falls back
