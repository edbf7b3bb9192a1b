"""Detect code changed between pause and resume: source hashes of the classes a session uses.

A run records ``{"classes": {module.Class: source hash}, ...}`` in the session state (and, for
reading, in the summary). On resume the check runs after the state is trusted and unpickled, on
the classes that state actually uses, looked up as the trials will find them: the search space's
and strategy's own classes, and the model and datamodule ``class_path`` of the base config,
imported with the session's recorded import path in place. Nothing named by the YAML summary is
ever imported. A class that cannot be found now, or whose source cannot be read although it
could be when it was recorded, is reported as a change: the check never passes what it cannot see.

A class pickled by value (defined in the user's script, ``__main__``) runs as it was pickled; it is
compared with a class of the same name in the running script when there is one (a script resumed
with ``--resume-session``), since the user may expect an edit there to take effect.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from lightning_bohb.exceptions import ConfigError, SessionError
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


def code_fingerprint(
    search_space: Any, strategy: Any, base_config: Mapping[str, Any], classes: Optional[Sequence[type]] = None
) -> Dict[str, Any]:
    """``{"classes": {module.Class: source hash}, "search_space_version": VERSION}``.

    ``classes``: the model, datamodule (and LightningCLI) classes as the parser resolved them
    (`ConfigDrivenOptimizer.user_classes`); without them, the config's full class paths are imported.
    """
    used = [type(search_space), type(strategy)]
    if classes is not None:
        used += list(classes)
    else:
        used += [cls for _, cls, _ in _config_classes(base_config) if cls is not None]
    return {
        "classes": {_class_key(cls): _source_hash(cls) for cls in used},
        "search_space_version": str(getattr(search_space, "VERSION", "0")),
        "search_space_class": _class_key(type(search_space)),
    }


def _as_found_now(cls: type) -> Tuple[Optional[type], bool]:
    """``(class, by_value)``: the class a lookup by its name finds now, and whether ``cls`` is not that
    class (it was pickled by value); the class is ``None`` when nothing of that name exists now."""
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None) if found is not None else None
    if found is cls:
        return cls, False
    return (found if isinstance(found, type) else None), True


def _config_classes(base_config: Mapping[str, Any]) -> List[Tuple[str, Optional[type], str]]:
    """``(class_path, class or None, why not found)`` for the model and datamodule of the base config."""
    found: List[Tuple[str, Optional[type], str]] = []
    for section in ("model", "data"):
        node = base_config.get(section)
        if not isinstance(node, Mapping) or not node.get("class_path"):
            continue
        class_path = str(node["class_path"])
        try:
            found.append((class_path, import_class(class_path, f"{section}.class_path"), ""))
        except ConfigError as err:
            found.append((class_path, None, str(err)))
        except Exception as err:  # the module imported, and failed: what the trials would meet
            found.append((class_path, None, f"importing it raised {type(err).__name__}: {err}"))
    return found


def changes_since(
    recorded: Mapping[str, Any],
    search_space: Any,
    strategy: Any,
    base_config: Mapping[str, Any],
    classes: Optional[Sequence[type]] = None,
) -> List[str]:
    """What differs between the ``recorded`` fingerprint and the code the session would run now.

    ``search_space``, ``strategy`` and ``base_config`` come from the unpickled (trusted) state; call
    this with the session's recorded import path in place, as the runner's trials have it.
    """
    recorded_classes = recorded.get("classes")
    hashes: Mapping[str, Any] = recorded_classes if isinstance(recorded_classes, Mapping) else {}
    changes: List[str] = []
    for obj in (search_space, strategy):
        key = _class_key(type(obj))
        current, by_value = _as_found_now(type(obj))
        if by_value and current is None:
            continue  # runs as pickled: exactly the recorded code
        _compare(changes, key, hashes, current, "")
    found = _config_classes(base_config) if classes is None else [(_class_key(c), c, "") for c in classes]
    for class_path, cls, why in found:
        key = _class_key(cls) if cls is not None else class_path
        _compare(changes, key, hashes, cls, why)
    space_cls, _ = _as_found_now(type(search_space))
    if space_cls is not None and "search_space_version" in recorded:
        old, new = str(recorded.get("search_space_version")), str(getattr(space_cls, "VERSION", "0"))
        if old != new:
            changes.append(f"search space VERSION: {old} -> {new}")
    return changes


def _compare(changes: List[str], key: str, hashes: Mapping[str, Any], cls: Optional[type], why: str) -> None:
    if cls is None:
        changes.append(f"class {key}: cannot be imported now ({why or 'not found'})")
        return
    if key not in hashes:
        changes.append(f"class {key}: not in the session's record (it used other classes)")
        return
    old, new = hashes.get(key), _source_hash(cls)
    if old is None or old == new:  # None: its source could not be read when recorded, nothing to compare
        return
    if new is None:
        changes.append(f"class {key}: its source cannot be read now")
    else:
        changes.append(f"class {key}: source changed")


def check_unchanged(
    recorded: Optional[Mapping[str, Any]],
    session_dir: Any,
    allow: bool,
    search_space: Any,
    strategy: Any,
    base_config: Mapping[str, Any],
    classes: Optional[Sequence[type]] = None,
) -> List[str]:
    """Refuse (`SessionError`) when the code changed, unless ``allow`` or the env var says so.

    Without a recorded fingerprint (a session saved before its first run) there is nothing to compare.
    """
    if not recorded:
        return []
    changes = changes_since(recorded, search_space, strategy, base_config, classes)
    if changes and not (allow or os.environ.get(ALLOW_ENV) == "1"):
        listed = "\n".join(f"  - {change}" for change in changes)
        raise SessionError(
            f"The code changed since session {session_dir} started:\n{listed}\n"
            "Resuming would mix results of different code. Restore the code of that version, or, if the "
            f"change is harmless, resume anyway: {ALLOW_ENV}=1 <resume command> "
            "(or lightning-bohb resume --allow-code-changes)."
        )
    return changes
