"""What names a stored row: a short hash of its configuration (JSON, keys sorted)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(data: Any) -> str:
    """A short hash of JSON data (a dict's keys sorted): cell hashes, craft keys, group and task keys."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
