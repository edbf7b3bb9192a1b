"""`swap_class`: how this package changes what one of Tune's objects does, by giving it a subclass.

Tune calls its scheduler's and search algorithm's methods, checks their types and pickles them with
the experiment; a wrapper would fail those checks. Each patch here replaces the object's class by a
subclass of it that overrides a few methods, once (a marker on the subclass says which patch it is).
"""

from __future__ import annotations

from typing import Any, Callable

OWN_PREFIX = "_lightning_bohb_"
"""What the names this package adds to Ray's objects begin with (`dump_scheduler` saves none of them)."""


def swap_class(obj: Any, patch: str, **methods: Callable[..., Any]) -> bool:
    """Give ``obj`` a subclass of its class (same name) with ``methods``; False, changing nothing, when its
    class has ``patch`` already. A method calls the class it overrides as ``type(obj)`` taken before the swap."""
    cls = type(obj)
    marker = OWN_PREFIX + patch
    if getattr(cls, marker, False):
        return False
    obj.__class__ = type(cls.__name__, (cls,), {**methods, marker: True})
    return True
