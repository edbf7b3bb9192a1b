"""`TuneSessionState`: everything needed to resume a session, and its human-readable summary.

``session_state.pkl`` is cloudpickled (so a search space defined in the user's own script comes
back) and holds the base config's content, not its path. ``session_state.summary.yaml`` is plain
YAML, read by `status`, `list` and the resume pre-checks without unpickling anything.
"""

from __future__ import annotations

import datetime
import enum
import platform
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from lightning_bohb.exceptions import SessionError
from lightning_bohb.utils.files import atomic_write

SCHEMA_VERSION = 1
STATE_FILE = "session_state.pkl"
SUMMARY_FILE = "session_state.summary.yaml"
SESSION_PREFIX = "session_"



class SessionStatus(str, enum.Enum):
    """A session's state as its summary records it."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    """Every trial finished: only a search loop that ran to its end sets it."""
    FAILED = "FAILED"


def new_session_id() -> str:
    return f"{datetime.datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


def now_iso() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def library_versions() -> Dict[str, str]:
    import lightning_bohb

    versions = {"python": platform.python_version(), "lightning_bohb": lightning_bohb.__version__}
    for name in ("ray", "lightning", "torch"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = str(getattr(module, "__version__", "?"))
    return versions


@dataclass
class TuneSessionState:
    """A session: what was asked for (search space, strategy, configs) and where it stands."""

    session_id: str
    experiment_name: str
    search_space: Any
    strategy: Any
    optimization_config: Any
    base_config: Dict[str, Any]
    base_config_source: Optional[str] = None
    script: Optional[str] = None
    sys_path: List[str] = field(default_factory=list)
    status: str = SessionStatus.RUNNING
    started_at: str = field(default_factory=now_iso)
    paused_at: List[str] = field(default_factory=list)
    resumed_at: List[str] = field(default_factory=list)
    versions: Dict[str, str] = field(default_factory=library_versions)
    fingerprint: Dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def pause_count(self) -> int:
        return len(self.paused_at)

    def save(self, session_dir: Union[str, Path]) -> Path:
        import cloudpickle

        path = Path(session_dir) / STATE_FILE
        atomic_write(path, cloudpickle.dumps(self))
        return path

    @classmethod
    def load(cls, session_dir: Union[str, Path]) -> "TuneSessionState":
        """Load a session, with a clear `SessionError` for every way that can fail."""
        session_dir = Path(session_dir).expanduser()
        if not session_dir.is_dir():
            raise SessionError(
                f"Session state not found: {session_dir} is not a directory. Check the exact path printed "
                f"when pausing, or list sessions: lightning-bohb list {session_dir.parent}"
            )
        path = session_dir / STATE_FILE
        if not path.is_file():
            raise SessionError(
                f"Session state not found: {path} does not exist, so {session_dir} is not a LightningTune "
                f"session. Sessions look like <experiment_dir>/<name>/session_<id>/; list them with: "
                f"lightning-bohb list {session_dir.parent}"
            )
        summary = read_summary(session_dir, required=False)
        check_schema(summary.get("schema_version", SCHEMA_VERSION) if summary else SCHEMA_VERSION, path)
        import pickle

        import cloudpickle

        try:
            state = cloudpickle.loads(path.read_bytes())
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            raise SessionError(
                f"The session state {path} is corrupt or truncated ({err}). If the session paused before, "
                "copy session_state.pkl from a backup of the session folder; the trial checkpoints under "
                f"{session_dir / 'tune'} are untouched."
            ) from None
        except (AttributeError, ImportError, ModuleNotFoundError) as err:
            raise SessionError(
                f"Cannot unpickle the session state {path}: {err}. The code that defined the search space "
                "or strategy changed or is not importable since the session started. Resume with the same "
                "code version (and run from the same folder)."
            ) from None
        if not isinstance(state, cls):
            raise SessionError(f"{path} does not hold a TuneSessionState; it is not a LightningTune session file.")
        check_schema(state.schema_version, path)
        return state


def check_schema(version: Any, path: Path) -> None:
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        import lightning_bohb

        raise SessionError(
            f"{path} was written with session schema version {version}, newer than this lightning_bohb "
            f"{lightning_bohb.__version__} reads (schema {SCHEMA_VERSION}). Upgrade: pip install -U lightning-bohb"
        )


_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster for `list`


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_summary(session_dir: Union[str, Path], summary: Dict[str, Any]) -> None:
    text = yaml.dump(summary, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)
    atomic_write(Path(session_dir) / SUMMARY_FILE, text)


def read_summary(session_dir: Union[str, Path], required: bool = True) -> Dict[str, Any]:
    """The session summary as a dict; `SessionError` if missing (when required) or unreadable."""
    path = Path(session_dir).expanduser() / SUMMARY_FILE
    try:
        summary = yaml.load(path.read_text(), Loader=_FAST_SAFE_LOADER)
    except FileNotFoundError:
        if not required:
            return {}
        raise SessionError(
            f"No session summary at {path}: {path.parent} is not a LightningTune session "
            f"(or it was cut short). List sessions with: lightning-bohb list {path.parent.parent}"
        ) from None
    except (OSError, yaml.YAMLError) as err:
        raise SessionError(f"The session summary {path} is unreadable ({err}).") from None
    if not isinstance(summary, dict):
        raise SessionError(f"The session summary {path} is corrupt (not a mapping).")
    return summary
