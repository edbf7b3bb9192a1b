"""Older session state formats, read and brought up to `lightning_bohb.session.state_format.FORMAT_VERSION`.

One function per version step (``_migrate_<n>_to_<n+1>``), applied in turn by `migrate`. Format 0 is
``session_state.pkl``: the cloudpickled `TuneSessionState` that 0.1.0 (and this package until format 1)
wrote. It is unpickled (`read_format_0`) only after the trust check, with the classes it names; a
format-0 state of a session folder that was resumed once is replaced by ``session_state.json``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.state_format import FORMAT_VERSION, encode
from lightning_bohb.utils.layout import TUNE_FOLDER

BACKUP_HINT = (
    "If the session paused before, copy its session state file from a backup of the session folder; the trial "
    "checkpoints under {tune} are untouched."
)


def migrate(version: int, state: Any) -> Dict[str, Any]:
    """``state`` of format ``version`` (for 0, the unpickled object) as format `FORMAT_VERSION` data."""
    while version < FORMAT_VERSION:
        state = MIGRATIONS[version](state)
        version += 1
    return state


def _migrate_0_to_1(old: Any) -> Dict[str, Any]:
    """Format 0 (the pickled state, checked by `format_0_problem`) to format 1. A field a release after
    0.1.0 added to the pickle is read with its default where the pickle lacks it (`OptimizationConfig`'s
    newer fields and a strategy's newer settings are class attributes, so they read as their defaults)."""
    config = old.optimization_config
    return {
        "format_version": 1,
        "written_by": str(old.versions.get("lightning_bohb", "0.1.0")),
        "session_id": old.session_id,
        "experiment_name": old.experiment_name,
        "status": str(getattr(old.status, "value", old.status)),
        "started_at": str(getattr(old, "started_at", "")),
        "paused_at": list(old.paused_at),
        "resumed_at": list(old.resumed_at),
        "versions": dict(old.versions),
        "fingerprint": encode(old.fingerprint),
        "script": getattr(old, "script", None),
        "sys_path": list(old.sys_path),
        "base_config_source": getattr(old, "base_config_source", None),
        "base_config": encode(old.base_config),
        "optimization_config": {field.name: encode(getattr(config, field.name)) for field in dataclasses.fields(OptimizationConfig)},
        "search_space": encode(old.search_space),
        "strategy": encode(old.strategy),
        "cli_arguments": encode(getattr(old, "cli_arguments", None) or {}),
    }


MIGRATIONS: Dict[int, Callable[[Any], Any]] = {0: _migrate_0_to_1}
"""Format n -> the step to format n + 1."""


def read_format_0(data: bytes, path: Path, session_dir: Path) -> Any:
    """The format-0 state pickled in ``data`` (after the trust check only), checked; `SessionError` for
    every way that fails."""
    from lightning_bohb.session.state import TuneSessionState

    state = _unpickle(data, path, session_dir)
    if not isinstance(state, TuneSessionState):
        raise SessionError(f"{path} does not hold a TuneSessionState; it is not a LightningTune session file.")
    problem = format_0_problem(state)
    if problem:
        raise SessionError(f"The session state {path} is corrupt ({problem}). {BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}")
    return state


class _StandIn:
    """What `_RecordedImportPath` gives for a class or function that does not import: takes any arguments and state."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_StandIn":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _with_recorded_import_path(data: bytes) -> bool:
    """Put the ``sys_path`` recorded in the state pickle ``data`` on the import path (read with `_StandIn`
    for whatever does not import); False when it holds none that is not there yet."""
    import io
    import pickle

    class _RecordedImportPath(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                return _StandIn

    try:
        state = _RecordedImportPath(io.BytesIO(data)).load()
    except Exception:  # not readable even so: the caller reports the first error
        return False
    return with_import_path(getattr(state, "sys_path", None))


def with_import_path(folders: Any) -> bool:
    """Put a state's recorded import path ``folders`` on the import path; False when it adds nothing."""
    from lightning_bohb.utils.imports import extend_import_path

    if not isinstance(folders, list) or not all(isinstance(p, str) for p in folders):
        return False
    before = list(sys.path)
    extend_import_path(folders)
    return sys.path != before


def _unpickle(data: bytes, path: Path, session_dir: Path) -> Any:
    import pickle

    import cloudpickle

    from lightning_bohb.session.state import error_text

    try:
        try:
            return cloudpickle.loads(data)
        except ImportError:
            # A class of the user's (a search space, a CLI class) in a module only the session's import path
            # holds: that path is in the same (trusted) pickle. Read it with stand-ins for what does not
            # import, put it on the import path, load again.
            if not _with_recorded_import_path(data):
                raise
            return cloudpickle.loads(data)
    except ImportError as err:
        raise SessionError(import_error(path, err)) from None
    except AttributeError as err:
        raise SessionError(attribute_error(path, err)) from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise SessionError(
            f"The session state {path} is corrupt or truncated ({error_text(err)}). {BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}"
        ) from None
    except Exception as err:  # a damaged pickle can fail in any way (TypeError, KeyError, MemoryError...)
        raise SessionError(
            f"The session state {path} is corrupt or truncated ({type(err).__name__}: {error_text(err)}). "
            f"{BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}"
        ) from None


def import_error(path: Path, err: ImportError) -> str:
    return (
        f"Cannot load the session state {path}: {err}, also with the session's recorded import path. Add "
        f"the folder that holds {err.name or 'that module'} to the import path (PYTHONPATH=/that/folder), then resume again."
    )


def attribute_error(path: Path, err: AttributeError) -> str:
    return (
        f"Cannot load the session state {path}: {err}. The code that defined the search space or strategy "
        "changed since the session started: resume with the code the session started with."
    )


def format_0_problem(state: Any) -> Optional[str]:
    """What is wrong with the fields of an unpickled format-0 state (a damaged pickle may still load), else None."""
    expected = {
        "session_id": str,
        "experiment_name": str,
        "base_config": dict,
        "sys_path": list,
        "status": str,
        "paused_at": list,
        "resumed_at": list,
        "versions": dict,
        "fingerprint": dict,
        "optimization_config": OptimizationConfig,
    }
    for name, kind in expected.items():
        value = getattr(state, name, None)
        if not isinstance(value, kind):
            return f"`{name}` is {type(value).__name__}, not {kind.__name__}"
    if not all(isinstance(p, str) for p in state.sys_path):
        return "`sys_path` holds something other than folder names"
    for name in ("search_space", "strategy"):
        if getattr(state, name, None) is None:
            return f"`{name}` is missing"
    if not str(state.session_id).strip() or "/" in state.session_id:
        return f"`session_id` is {state.session_id!r}"
    return None
