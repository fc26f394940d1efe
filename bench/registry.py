"""A small registry of named things with aliases and "did you mean" errors.

Names are case-sensitive as written in the papers (``O:SOFTMAX:CE``); look-ups also
accept any case and lower_snake aliases. An unknown name lists every valid one.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
from collections.abc import Iterator
from typing import Generic, TypeVar

from bench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps canonical names (and aliases) to entries of one kind, e.g. datasets or model kinds."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lookup: dict[str, str] = {}  # folded name or alias -> canonical name

    def register(self, name: str, entry: T, aliases: tuple[str, ...] = ()) -> T:
        for key in (name, *aliases):
            folded = key.casefold()
            if folded in self._lookup:
                raise ValueError(f"{self.kind} name {key!r} is already registered (as {self._lookup[folded]!r})")
            self._lookup[folded] = name
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


def code_fingerprint(*functions: object) -> str:
    """A hash of the source files that define ``functions`` (the whole file, so an edited helper beside them
    counts too): what a plugin's store keys and cell hashes include, so edited code is never served stale
    results. A function without a source file (built in C, or typed at a prompt) counts by its name."""
    digest = hashlib.sha256()
    for function in functions:
        try:
            digest.update(open(inspect.getsourcefile(function), "rb").read())  # noqa: SIM115
        except (OSError, TypeError):
            digest.update(f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}".encode())
    return digest.hexdigest()[:16]
