"""Detect code changed between pause and resume: source hashes of the classes a session uses.

A run records ``{"classes": {module.Class: source hash}, ...}`` in the session state (and, for
reading, in the summary). On resume the check runs after the state is trusted and unpickled, on
the classes that state actually uses, looked up as the trials will find them: the search space's
and strategy's own classes, and the model and datamodule ``class_path`` of the base config,
imported with the session's recorded import path in place. Nothing named by the YAML summary is
ever imported. A class whose source cannot be read although it could be when it was recorded is
reported as a change: the check never passes what it cannot see.

Only the user's classes are compared: this package's own (its strategies, `YamlSearchSpace`) change with
its releases, and a session paused by one release resumes under the next (a state of an older release
is read as that release wrote it; `tests/e2e/test_golden_sessions.py`). Records of them written by
earlier releases are passed over.

A class pickled by value (defined in the user's script, ``__main__``) runs as it was pickled; it is
compared with a class of the same name in the running script when there is one (a script resumed
with ``--resume-session``), since the user may expect an edit there to take effect.

The record also holds, per class defined in a source file, its module, file and a hash of its source
read from the file (``sources``): `check_sources` compares those before anything of the user's is
imported (importing a model imports torch and Lightning: seconds), so a class that is gone or
changed is refused at once. A class that cannot be imported is refused with the folder to add to
the import path, never as a code change.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from lightning_bohb.exceptions import ConfigError, SessionError
from lightning_bohb.utils.imports import import_class, module_fix
from lightning_bohb.utils.module_source import MISSING, ModuleSource, class_source_hash, import_root, locate, top_level_names

ALLOW_ENV = "LIGHTNING_BOHB_ALLOW_CODE_CHANGES"


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_own(key: str) -> bool:
    """Whether ``key`` names a class of this package (not compared: it changes with its releases)."""
    return key.startswith(__name__.split(".")[0] + ".")


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
    used = [cls for cls in used if not _is_own(_class_key(cls))]
    sources = {_class_key(cls): _source_record(cls) for cls in used}
    return {
        "classes": {_class_key(cls): _source_hash(cls) for cls in used},
        "sources": {key: record for key, record in sources.items() if record is not None},
        "search_space_version": str(getattr(search_space, "VERSION", "0")),
        "search_space_class": _class_key(type(search_space)),
    }


_SOURCE_KEYS = ("module", "qualname", "file", "source")


def _source_record(cls: type) -> Optional[Dict[str, str]]:
    """``{module, qualname, file, source}`` of a class defined in a ``.py`` file (plain strings), for `check_sources`."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if cls.__module__ == "__main__" or not isinstance(file, str) or not file.endswith(".py"):
        return None
    digest = class_source_hash(os.path.abspath(file), cls.__qualname__)
    if digest is None:
        return None
    return {"module": cls.__module__, "qualname": cls.__qualname__, "file": os.path.abspath(file), "source": digest}


def check_sources(recorded: Optional[Mapping[str, Any]], session_dir: Any, allow: bool, import_path: Sequence[str]) -> List[str]:
    """Before the session's code is imported: `SessionError` for a recorded class that cannot be imported now
    (naming the folder to add to the import path) or, unless allowed, whose source changed (as `check_unchanged`).

    Call with the session's recorded ``import_path`` in place. Returns the changes allowed. What the files
    cannot settle (a module that is not a plain source file) is left to `check_unchanged`.
    """
    records = recorded.get("sources") if isinstance(recorded, Mapping) else None
    changes: List[str] = []
    for key, record in (records.items() if isinstance(records, Mapping) else ()):
        if _is_own(key):
            continue
        if not (isinstance(record, Mapping) and all(isinstance(record.get(k), str) for k in _SOURCE_KEYS)):
            continue  # not written by this version: `check_unchanged` judges
        module, qualname = record["module"], record["qualname"]
        found = locate(module)
        if found is MISSING:
            raise cannot_import(session_dir, key, f"no module named {module.split('.')[0]!r} is on the import path", import_path, record)
        if not isinstance(found, ModuleSource) or found.file is None:
            continue
        digest = class_source_hash(found.file, qualname)
        if digest is None:
            names = top_level_names(found)
            if names is not None and qualname.split(".")[0] not in names:
                raise cannot_import(session_dir, key, f"module {module!r} ({found.file}) defines no {qualname!r}", import_path, record)
        elif digest != record["source"]:
            changes.append(f"class {key}: source changed")
    refuse_changes(changes, session_dir, allow)
    return changes


def cannot_import(
    session_dir: Any, key: str, why: str, import_path: Sequence[str], record: Optional[Mapping[str, Any]] = None
) -> SessionError:
    """The refusal of a resume whose class ``key`` cannot be imported now: the folder to add, never "changed"."""
    was = ""
    near = [*import_path, os.getcwd()]
    if record is not None:
        file = str(record.get("file") or "")
        gone = "" if os.path.isfile(file) else ", no longer there"
        was = f" When the session started it was {file}{gone}."
        root = import_root(str(record.get("module") or ""), file)
        near = [os.path.dirname(root), *near] if root else near
    module = key.rpartition(".")[0] if record is None else str(record.get("module"))
    folders = "; ".join(import_path) or "(none recorded)"
    return SessionError(
        f"Session {session_dir} cannot be resumed: class {key} cannot be imported: {why}.{was} "
        f"{module_fix(module, near)}, then resume again. (The session's import path: {folders}.)"
    )


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
    if _is_own(key):
        return
    if cls is None:
        raise _NotImportable(key, why or "not found")
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
    import_path: Sequence[str] = (),
) -> List[str]:
    """Refuse (`SessionError`) when the code changed, unless ``allow`` or the env var says so, and when a
    class cannot be imported (`cannot_import`; ``import_path``: the session's, for the message).

    Without a recorded fingerprint (a session saved before its first run) there is nothing to compare.
    """
    if not recorded:
        return []
    try:
        changes = changes_since(recorded, search_space, strategy, base_config, classes)
    except _NotImportable as err:
        raise cannot_import(session_dir, err.key, err.why, import_path) from None
    refuse_changes(changes, session_dir, allow)
    return changes


class _NotImportable(Exception):
    def __init__(self, key: str, why: str) -> None:
        super().__init__(key)
        self.key, self.why = key, why


def refuse_changes(changes: Sequence[str], session_dir: Any, allow: bool) -> None:
    """`SessionError` listing the code ``changes`` (each names its class), unless allowed or there are none."""
    if changes and not (allow or os.environ.get(ALLOW_ENV) == "1"):
        listed = "\n".join(f"  - {change}" for change in changes)
        raise SessionError(
            f"The code changed since session {session_dir} started:\n{listed}\n"
            "Resuming would mix results of different code. Restore the code of that version, or, if the "
            f"change is harmless, resume anyway: {ALLOW_ENV}=1 <resume command> "
            "(or lightning-bohb resume --allow-code-changes)."
        )
