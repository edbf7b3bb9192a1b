"""Detect code changed between pause and resume: source hashes of the classes a session uses.

The fingerprint is stored in the session summary (plain YAML), so it is checked before anything is
unpickled. Classes are looked up where they live now: an importable module, or the script being run
(``__main__``), whose current source is compared with the one recorded.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from typing import Any, Dict, List, Mapping, Optional

from lightning_bohb.exceptions import SessionError
from lightning_bohb.utils.imports import import_class

ALLOW_ENV = "LIGHTNING_BOHB_ALLOW_CODE_CHANGES"


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _source_hash(cls: Optional[type]) -> Optional[str]:
    if cls is None:
        return None
    try:
        return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


def code_fingerprint(search_space: Any, strategy: Any, base_config: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"classes": {module.Class: source hash}, "search_space_version": VERSION}``."""
    classes = [type(search_space), type(strategy)]
    classes += [import_class(base_config[s]["class_path"]) for s in ("model", "data") if base_config.get(s)]
    return {
        "classes": {_class_key(cls): _source_hash(cls) for cls in classes},
        "search_space_version": str(getattr(search_space, "VERSION", "0")),
        "search_space_class": _class_key(type(search_space)),
    }


def _current_class(key: str) -> Optional[type]:
    module_name, _, qualname = key.rpartition(".")
    if not module_name:
        return None
    module = sys.modules.get(module_name)
    if module is None and module_name != "__main__":
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
    return getattr(module, qualname, None) if module is not None else None


def changes_since(recorded: Mapping[str, Any]) -> List[str]:
    """What differs between the recorded fingerprint and the code importable now."""
    changes = []
    for key, old_hash in (recorded.get("classes") or {}).items():
        cls = _current_class(key)
        new_hash = _source_hash(cls) if cls is not None else None
        if old_hash and new_hash and old_hash != new_hash:
            changes.append(f"class {key}: source changed")
    space_cls = _current_class(recorded.get("search_space_class", ""))
    if space_cls is not None:
        old, new = str(recorded.get("search_space_version")), str(getattr(space_cls, "VERSION", "0"))
        if old != new:
            changes.append(f"search space VERSION: {old} -> {new}")
    return changes


def check_unchanged(recorded: Optional[Mapping[str, Any]], session_dir: Any, allow: bool) -> List[str]:
    """Refuse (`SessionError`) when the code changed, unless ``allow`` or the env var says so."""
    changes = changes_since(recorded or {})
    if changes and not (allow or os.environ.get(ALLOW_ENV) == "1"):
        listed = "\n".join(f"  - {change}" for change in changes)
        raise SessionError(
            f"The code changed since session {session_dir} started:\n{listed}\n"
            "Resuming would mix results of different code. Restore the code of that version, or, if the "
            f"change is harmless, resume anyway: {ALLOW_ENV}=1 <resume command> "
            "(or lightning-bohb resume --allow-code-changes)."
        )
    return changes
