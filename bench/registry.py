"""A small registry of named things with aliases and "did you mean" errors.

Names are case-sensitive as written in the papers (``O:SOFTMAX:CE``); look-ups also
accept any case and lower_snake aliases. An unknown name lists every valid one.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Generic, TypeVar

from bench.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps canonical names (and aliases) to entries of one kind, e.g. datasets or model kinds."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lookup: dict[str, str] = {}  # folded name or alias -> canonical name

    def register(self, name: str, entry: T, aliases: tuple[str, ...] = ()) -> T:
        """Add ``entry``; the same entry again is a no-op, and a name or alias taken by another is refused before
        anything is written."""
        if self._entries.get(name) == entry and all(self._lookup.get(a.casefold()) == name for a in aliases):
            return entry
        for key in (name, *aliases):
            taken = self._lookup.get(key.casefold())
            if taken is not None:
                origin = getattr(self._entries[taken], "origin", None)
                by = f", from {origin}" if origin else ""
                raise ConfigError(
                    f"{self.kind} name {key!r} is already registered (as {taken!r}{by}); give yours another name."
                )
        for key in (name, *aliases):
            self._lookup[key.casefold()] = name
        self._entries[name] = entry
        return entry

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or an alias of it; raises UnknownNameError otherwise."""
        try:
            return self._lookup[name.casefold()]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._lookup

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def values(self) -> list[T]:
        """The entries in registration order (aliases not repeated), for queries over what is registered."""
        return list(self._entries.values())

    def items(self) -> list[tuple[str, T]]:
        """(canonical name, entry) pairs in registration order."""
        return list(self._entries.items())

    def _unknown_message(self, name: str) -> str:
        valid = ", ".join(self._entries)
        close = difflib.get_close_matches(name.casefold(), list(self._lookup), n=1, cutoff=0.6)
        hint = f" Did you mean {self._lookup[close[0]]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}; expected one of: {valid}.{hint}"


OURS = Path(__file__).resolve().parent.parent  # the folder holding bench/, models/ and attacks_ext/
OUR_PACKAGES = ("bench", "models", "attacks_ext")


def code_fingerprint(*functions: object) -> str:
    """A hash of the code behind ``functions``: each one's qualified name, and the source of the package (or the
    single file) that defines it, so an edited helper beside it counts too. What plugins' store keys and cell
    hashes include, so edited code is never served stale results. This package's own code counts by name only
    (a plugin built on ``linear_head`` keeps its key when bench changes)."""
    digest = hashlib.sha256()
    for function in functions:
        digest.update(f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}".encode())
        for file in _code_files(function):
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _code_files(function: object) -> list[Path]:
    try:
        file = Path(inspect.getsourcefile(function)).resolve()
    except (OSError, TypeError):  # built in C, or typed at a prompt: its name is all there is
        return []
    if any(file.is_relative_to(OURS / package) for package in OUR_PACKAGES):
        return []
    top = file.parent
    if not (top / "__init__.py").is_file():
        return [file]  # a single-file plugin
    while (top.parent / "__init__.py").is_file():
        top = top.parent
    return sorted(top.rglob("*.py"))
