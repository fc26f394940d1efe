"""Leases: which run is crafting which craft group, kept in the results store's file, so that runs sharing one
``--out`` share the work instead of each computing every cell.

A run claims a unit of work (a craft group, ``bench.matrix.runner``) before it starts it, in one ``BEGIN IMMEDIATE``
transaction: of two claimers one wins, the other finds it held. The lease names its owner (host, pid, the process's
start time and a random run id) and an expiry time that a heartbeat thread pushes on every tenth of the lease time;
it is released once the unit's cells are stored. A run that finds a unit held by a live owner leaves it for the end
and waits there, with a progress message, until it is released (its cells are then stored) or free again.

When the owner dies:
- SIGKILL, a crash, a machine that stops: its leases stay, unrenewed. On the same host the owner is known dead at
  once (its pid is gone, a zombie, or another process's since the start time differs) and its unit claimed again;
  from another host, once the lease expires (``BENCH_LEASE_SECONDS``, default 600 s without renewal).
- an exception or Ctrl-C: the run gives its unfinished leases up on the way out; another run may claim them at once.
Cells a dead owner stored are kept; the next claimer runs the rest, as a rerun would.

A released lease keeps its release's number (increasing over the store): a run that then claims it learns whether
another run finished the unit after this run began (``Claim.finished_elsewhere``), whose stored cells, failed ones
included, are then not run again here.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bench.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

SECONDS_ENV = "BENCH_LEASE_SECONDS"
DEFAULT_SECONDS = 600.0  # a lease not renewed for this long is void: its owner is taken for dead
MESSAGE_EVERY = 60.0  # seconds between two progress messages of a run waiting for other runs' units

_TABLE = """CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,   -- what is claimed: group:<craft group key>, diagnostics:<model key>:...
    host TEXT NOT NULL,     -- the owner, or the last one
    pid INTEGER NOT NULL,
    pid_start INTEGER,      -- the owner process's start time (Linux clock ticks): a reused pid is not the owner
    run_id TEXT NOT NULL,
    claimed REAL NOT NULL,  -- unix time
    expires REAL NOT NULL,  -- unix time: void after it, unless renewed
    state TEXT NOT NULL,    -- held, done (released with its cells stored) or free (given up unfinished)
    released INTEGER        -- the number of its last release, increasing over the store
)"""
_HOST = socket.gethostname()
_ACTIVE: set[str] = set()  # run ids of this process's open Leases: a lease of this pid under another id is stale


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    pid_start: int | None
    run_id: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} (run {self.run_id})"


class _Row(NamedTuple):
    """A row of the leases table."""

    key: str
    host: str
    pid: int
    pid_start: int | None
    run_id: str
    claimed: float
    expires: float
    state: str
    released: int | None

    @property
    def owner(self) -> Owner:
        return Owner(self.host, self.pid, self.pid_start, self.run_id)


@dataclass(frozen=True)
class Claim:
    won: bool
    holder: Owner | None = None  # who holds it, when not won
    expires: float = 0.0
    finished_elsewhere: bool = False  # won, but another run released it (cells stored) after this run began


def lease_seconds() -> float:
    """How long a lease lasts without renewal: ``BENCH_LEASE_SECONDS`` or 600."""
    text = os.environ.get(SECONDS_ENV, "")
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{SECONDS_ENV}={text!r}; expected a number of seconds above 0, e.g. 600.")
    return seconds


def this_process() -> Owner:
    return Owner(_HOST, os.getpid(), _process_start(os.getpid()), uuid.uuid4().hex[:12])


class Leases:
    """This run's leases in the store file ``path``; a context that renews them while open and gives up the
    unfinished ones on the way out."""

    def __init__(self, path: str | Path, seconds: float | None = None, owner: Owner | None = None) -> None:
        self.path = Path(path)
        self.seconds = lease_seconds() if seconds is None else seconds
        self.owner = owner or this_process()
        self.held: set[str] = set()
        self._lock = threading.Lock()  # the heartbeat's renewal sees ``held`` as the store does
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._said = 0.0
        with self._immediate() as db:
            db.execute(_TABLE)
            self.epoch = db.execute("SELECT coalesce(max(released), 0) FROM leases").fetchone()[0]

    def __enter__(self) -> Leases:
        _ACTIVE.add(self.owner.run_id)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            self.give_up()
        finally:
            _ACTIVE.discard(self.owner.run_id)

    def claim(self, key: str) -> Claim:
        """``key`` for this run, unless a live owner holds it: checked first without a lock, then in one
        BEGIN IMMEDIATE transaction, so that of two claimers exactly one wins."""
        held = self._held_by_other(self._peek(key), time.time())
        if held is not None:
            return held
        with self._lock, self._immediate() as db:
            row, now = self._row(db, key), time.time()
            held = self._held_by_other(row, now)
            if held is not None:
                return held
            if row is not None and row.state == "held" and row.run_id != self.owner.run_id:
                log.warning("taking over %s from %s: %s", key, row.owner, _why_void(row, now))
            o = self.owner
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?)",
                (key, o.host, o.pid, o.pid_start, o.run_id, now, now + self.seconds, row.released if row else None),
            )
            self.held.add(key)
        finished = row is not None and row.state == "done" and (row.released or 0) > self.epoch
        return Claim(True, expires=now + self.seconds, finished_elsewhere=finished)

    def release(self, key: str) -> None:
        """``key`` is done (its cells are stored): free for a later run, and known finished to runs begun before."""
        with self._lock, self._immediate() as db:
            number = db.execute("SELECT coalesce(max(released), 0) + 1 FROM leases").fetchone()[0]
            db.execute(
                "UPDATE leases SET state = 'done', released = ? WHERE key = ? AND run_id = ?",
                (number, key, self.owner.run_id),
            )
            self.held.discard(key)

    def give_up(self) -> None:
        """Free this run's unfinished leases, to be claimed at once by another run."""
        with self._lock, self._immediate() as db:
            sql = "UPDATE leases SET state = 'free' WHERE run_id = ? AND state = 'held'"
            db.execute(sql, (self.owner.run_id,))
            self.held.clear()

    def renew(self) -> int:
        """Push the expiry of every lease this run holds; returns how many it still holds."""
        with self._lock, self._immediate() as db:
            sql = "UPDATE leases SET expires = ? WHERE run_id = ? AND state = 'held'"
            renewed, held = db.execute(sql, (time.time() + self.seconds, self.owner.run_id)).rowcount, len(self.held)
        if renewed < held:  # another run took this one for dead (it was paused for longer than the lease)
            log.warning(
                "%d of this run's leases were taken over by another run; their cells may be crafted twice "
                "(and stored once)",
                held - renewed,
            )
        return renewed

    def wait(self, held: list[Claim], poll: float | None = None) -> None:
        """Sleep while other runs hold every unit left, saying now and then which and for how long at most."""
        now = time.time()
        if now - self._said >= MESSAGE_EVERY:
            self._said = now
            holders = sorted({str(c.holder) for c in held})
            log.warning(
                "waiting for %d unit(s) of work that other runs hold (%s); the last lease expires in %.0f s "
                "unless renewed",
                len(held),
                ", ".join(holders),
                max(c.expires for c in held) - now,
            )
        time.sleep(min(5.0, self.seconds / 10) if poll is None else poll)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.seconds / 10):
            try:
                if self.held:
                    self.renew()
            except StoreError as exc:  # a busy or vanished store: the next beat tries again
                log.warning("could not renew this run's leases: %s", exc)

    def _held_by_other(self, row: _Row | None, now: float) -> Claim | None:
        """The claim lost to ``row``'s owner, if it is someone else, alive, and its lease not expired."""
        if row is None or row.state != "held" or row.run_id == self.owner.run_id or _why_void(row, now):
            return None
        return Claim(False, holder=row.owner, expires=row.expires)

    def _row(self, db: sqlite3.Connection, key: str) -> _Row | None:
        try:
            row = db.execute(f"SELECT {', '.join(_Row._fields)} FROM leases WHERE key = ?", (key,)).fetchone()
            return None if row is None else _Row(*row)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {self.path}: the leases cannot be read ({exc}).") from exc

    def _peek(self, key: str) -> _Row | None:
        """The lease row of ``key`` as it stands, read without taking the write lock."""
        try:
            db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path} cannot be opened for leases: {exc}.") from exc
        try:
            return self._row(db, key)
        finally:
            db.close()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, begun with the write lock taken (BEGIN IMMEDIATE): what is read in it stays true."""
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path} cannot be opened for leases: {exc}.") from exc
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path}: a lease could not be written ({exc}).") from exc
        finally:
            db.close()


def _why_void(row: _Row, now: float) -> str:
    """Why the lease ``row`` no longer holds ('' while it does): expired, or its owner is gone."""
    if now >= row.expires:
        return f"its lease expired {now - row.expires:.0f} s ago"
    return "" if _alive(row.owner) else "its process is gone"


def _alive(owner: Owner) -> bool:
    """Whether the lease's owner may still be at work. On another host only its lease's expiry tells."""
    if owner.host != _HOST:
        return True
    if owner.pid == os.getpid():  # this process: a run here that ended without giving its leases up is over
        return owner.run_id in _ACTIVE
    if not Path("/proc/self/stat").exists():  # no /proc (macOS): a pid that exists counts as the owner
        try:
            os.kill(owner.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return owner.pid_start is not None and _process_start(owner.pid) == owner.pid_start


def _process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None when it is gone, a zombie, or there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name, in parentheses, may hold spaces
    return None if fields[0] in ("Z", "X") else int(fields[19])


def stored_status(path: str | Path) -> dict[str, str]:
    """Every stored cell's status (ok, error) by hash, read from the results store file ``path`` now."""
    db = sqlite3.connect(path, timeout=60)
    try:
        return dict(db.execute("SELECT cell_hash, status FROM results").fetchall())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"results store {path} cannot be read: {exc}.") from exc
    finally:
        db.close()


def take_turns(leases: Leases, keys: list[str], many: bool = False) -> Iterator[list[tuple[str, Claim]]]:
    """Rounds of the keys this run wins, each key once: the first free one in order (``many``: every free one),
    then again over what is left, the keys other runs held last; while they hold all that is left, wait."""
    pending = list(keys)
    while pending:
        won: list[tuple[str, Claim]] = []
        held: list[tuple[str, Claim]] = []
        for i, key in enumerate(pending):
            claim = leases.claim(key)
            (won if claim.won else held).append((key, claim))
            if won and not many:
                pending = pending[i + 1 :] + [k for k, _ in held]
                break
        else:
            pending = [k for k, _ in held]
        if won:
            yield won
        elif held:
            leases.wait([c for _, c in held])
