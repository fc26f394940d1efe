"""The results store's tables: what a store of this bench holds, and how an older store is brought up to it."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

COLUMNS = """
    cell_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    model_key TEXT NOT NULL,
    setting TEXT NOT NULL,
    source TEXT,
    attack TEXT NOT NULL,
    param TEXT,
    value REAL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    metric TEXT,
    rate REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    hits INTEGER,
    clean_accuracy REAL,
    l2_mean REAL,
    l2_median REAL,
    linf_mean REAL,
    linf_median REAL,
    seconds REAL,
    craft_seconds REAL,
    craft_reused INTEGER,
    examples_per_second REAL,
    forward_passes INTEGER,
    backward_passes INTEGER,
    pass_seconds REAL,
    per_example BLOB,
    image_indices BLOB,
    error TEXT,
    seed INTEGER,
    device TEXT,
    commit_id TEXT,
    versions TEXT,
    created TEXT
"""

# columns added after schema 1 was written: added to older stores on open
ADDED_COLUMNS = {"image_indices": "BLOB", "best_pass_seconds": "REAL"}

# added after schema version 1 without a bump: older stores simply have no model metadata, and older readers ignore it
MODELS_TABLE = "CREATE TABLE IF NOT EXISTS models (model_key TEXT PRIMARY KEY, meta TEXT NOT NULL)"


def lay_out(db: sqlite3.Connection) -> str:
    """Give the store every table and column this bench writes (those present stay as they are); returns the
    schema version the store records."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"CREATE TABLE IF NOT EXISTS results ({COLUMNS})")
    present = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    for column, kind in ADDED_COLUMNS.items():
        if column not in present:  # old rows read NULL: "not stored", never a wrong value
            db.execute(f"ALTER TABLE results ADD COLUMN {column} {kind}")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(MODELS_TABLE)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
