"""How providers' JSON notifications are read: UTF-8 only, and each key once, so that the
bytes a signature covers can tell only one story (to us and to whoever reads them next)."""

from __future__ import annotations

import json
from typing import Any


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice in {sorted(keys)}")
    return dict(pairs)


def loads_strict(data: bytes) -> Any:
    """The JSON value of ``data``; ValueError when it is not UTF-8 (json.loads would guess
    UTF-16), not JSON, or names a key twice in one object."""
    return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
