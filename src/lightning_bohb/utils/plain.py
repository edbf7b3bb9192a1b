"""Plain Python values from what searchers sample (numpy scalars and strings)."""

from __future__ import annotations

from typing import Any


def to_plain(value: Any) -> Any:
    """Turn numpy scalars (TuneBOHB samples them) into Python types, so checkpoints load with weights_only."""
    if isinstance(value, str):
        return str(value)  # np.str_ (TuneBOHB samples choices as numpy strings) is a str subclass
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value
