"""`TuneSessionState`: everything needed to resume a session, and its human-readable summary.

``session_state.pkl`` is cloudpickled (so a search space defined in the user's own script comes
back) and holds the base config's content, not its path. ``session_state.summary.yaml`` is plain
YAML, read by `status`, `list` and the resume pre-checks without unpickling anything.
"""

from __future__ import annotations

import datetime
import enum
import platform
import re
import secrets
import sys
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from lightning_bohb.exceptions import ConfigError, SessionError
from lightning_bohb.utils.files import atomic_write, read_bounded
from lightning_bohb.utils.layout import STATE_FILE, SUMMARY_FILE, TUNE_FOLDER

SCHEMA_VERSION = 1


class SessionStatus(str, enum.Enum):
    """A session's state as its summary records it."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    """Every trial finished: only a search loop that ran to its end sets it."""
    FAILED = "FAILED"


def new_session_id() -> str:
    return f"{datetime.datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_session_id(session_id: Any) -> str:
    """A session id chosen by the user (``--session-id``): it names the folder ``session_<id>``.

    `ConfigError` unless 1-100 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit
    (so ``$SLURM_JOB_ID``, a Kubernetes Job name or ``nightly`` work; nothing leads out of the folder).
    """
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise ConfigError(
            f"The value of `session_id` is {session_id!r}, but must be 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. --session-id \"$SLURM_JOB_ID\" or --session-id nightly)."
        )
    return session_id


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
    cli_arguments: Dict[str, Any] = field(default_factory=dict)
    """`ConfigDrivenOptimizer`'s LightningCLI arguments (``cli_class``, ``model_class``, ...)."""
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
    def load(cls, session_dir: Union[str, Path], trust: bool = False) -> "TuneSessionState":
        """Load a session, with a clear `SessionError` for every way that can fail.

        Nothing is unpickled before `lightning_bohb.session.trust.check_trusted` (owner and mode of
        the folder and its state files) passes, unless ``trust`` (or ``LIGHTNING_BOHB_TRUST=1``).
        """
        from lightning_bohb.session.trust import check_trusted, trust_overridden

        session_dir = Path(session_dir).expanduser()
        if not session_dir.is_dir():
            raise SessionError(
                f"Session state not found: {session_dir} is not a directory. Check the exact path printed "
                f"when pausing, or list sessions: lightning-bohb list {session_dir.parent}"
            )
        path = session_dir / STATE_FILE
        if not path.is_file() and not path.is_symlink():
            raise SessionError(
                f"Session state not found: {path} does not exist, so {session_dir} is not a LightningTune "
                f"session. Sessions look like <experiment_dir>/<name>/session_<id>/; list them with: "
                f"lightning-bohb list {session_dir.parent}"
            )
        summary = read_summary(session_dir, required=False)
        check_schema(summary.get("schema_version", SCHEMA_VERSION), path)
        check_trusted(session_dir, trust)
        try:
            data = read_bounded(path, MAX_STATE_BYTES, binary=True, follow_link=trust_overridden(trust))
        except (OSError, ValueError) as err:
            raise SessionError(f"The session state {path} cannot be read ({_reason(err)}).") from None
        state = _unpickle(data, path, session_dir)
        if not isinstance(state, cls):
            raise SessionError(f"{path} does not hold a TuneSessionState; it is not a LightningTune session file.")
        check_schema(getattr(state, "schema_version", None), path)
        problem = _state_problem(state)
        if problem:
            raise SessionError(f"The session state {path} is corrupt ({problem}). {_BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}")
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

    from lightning_bohb.utils.imports import extend_import_path

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
    folders = getattr(state, "sys_path", None)
    if not isinstance(folders, list) or not all(isinstance(p, str) for p in folders):
        return False
    before = list(sys.path)
    extend_import_path(folders)
    return sys.path != before


_BACKUP_HINT = (
    "If the session paused before, copy session_state.pkl from a backup of the session folder; the trial "
    "checkpoints under {tune} are untouched."
)


def _unpickle(data: bytes, path: Path, session_dir: Path) -> Any:
    import pickle

    import cloudpickle

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
        raise SessionError(
            f"Cannot unpickle the session state {path}: {err}, also with the session's recorded import path. Add "
            f"the folder that holds {err.name or 'that module'} to the import path (PYTHONPATH=/that/folder), then resume again."
        ) from None
    except AttributeError as err:
        raise SessionError(
            f"Cannot unpickle the session state {path}: {err}. The code that defined the search space or strategy "
            "changed since the session started: resume with the code the session started with."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise SessionError(
            f"The session state {path} is corrupt or truncated ({_reason(err)}). {_BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}"
        ) from None
    except Exception as err:  # a damaged pickle can fail in any way (TypeError, KeyError, MemoryError...)
        raise SessionError(
            f"The session state {path} is corrupt or truncated ({type(err).__name__}: {_reason(err)}). "
            f"{_BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}"
        ) from None


def _state_problem(state: "TuneSessionState") -> Optional[str]:
    """What is wrong with the fields of an unpickled state (a damaged pickle may still load), else None."""
    from lightning_bohb.core.optimization_config import OptimizationConfig

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


def check_schema(version: Any, path: Path) -> None:
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        import lightning_bohb

        raise SessionError(
            f"{path} was written with session schema version {version}, newer than this lightning_bohb "
            f"{lightning_bohb.__version__} reads (schema {SCHEMA_VERSION}). Upgrade: pip install -U lightning-bohb"
        )


_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster for `list`
MAX_SUMMARY_BYTES = 8 * 2**20
"""A summary LightningTune writes is about 300 bytes per trial: 8 MiB holds ~25,000 trials."""
MAX_STATE_BYTES = 512 * 2**20
MAX_DEPTH = 64
"""Nesting of a summary: ours is at most a few levels deeper than the search space's values."""
MAX_INT_DIGITS = 1000
"""Python refuses to print ints of more than 4300 digits; ours have a few."""


class _NoAliasDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml's: 10x faster
    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_summary(session_dir: Union[str, Path], summary: Dict[str, Any]) -> None:
    text = yaml.dump(summary, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)
    atomic_write(Path(session_dir) / SUMMARY_FILE, text)


def load_yaml_data(text: str, aliases: bool = False, max_nodes: int = 2_000_000) -> Any:
    """``yaml.safe_load`` with bounds: no aliases (or, with ``aliases``, at most ``max_nodes`` values
    once expanded), nesting at most `MAX_DEPTH`, no ints too long to print.

    Raises `ValueError` (the message says what) or `yaml.YAMLError`.
    """
    if not aliases and "&" in text and "*" in text:  # an alias needs both an anchor and a reference
        for event in yaml.parse(text, Loader=_FAST_SAFE_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise ValueError("it uses YAML aliases (*name), which LightningTune never writes")
    data = yaml.load(text, Loader=_FAST_SAFE_LOADER)
    check_plain(data, max_nodes)
    return data


def check_plain(data: Any, max_nodes: int = 2_000_000) -> None:
    """`ValueError` unless ``data`` (as YAML or JSON loads it) is nested at most `MAX_DEPTH` deep,
    counts at most ``max_nodes`` values (shared ones once per use), holds no int of more than
    `MAX_INT_DIGITS` digits and only keys that JSON can write."""
    stack = [(data, 0)]
    nodes = 0
    max_bits = int(MAX_INT_DIGITS * 3.33)
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ValueError(f"it holds more than {max_nodes} values")
        if isinstance(value, str):
            continue
        if isinstance(value, int):
            if value.bit_length() > max_bits:
                raise ValueError(f"it holds an integer of more than {MAX_INT_DIGITS} digits")
        elif isinstance(value, (dict, list, tuple, set, frozenset)):
            if depth >= MAX_DEPTH:
                raise ValueError(f"it is nested more than {MAX_DEPTH} levels deep")
            inner = repeat(depth + 1)
            if isinstance(value, dict):
                for key in value:
                    if not isinstance(key, _JSON_KEYS):
                        raise ValueError(f"it has a key of type {type(key).__name__}")
                stack.extend(zip(value, inner, strict=False))
                stack.extend(zip(value.values(), inner, strict=False))
            else:
                stack.extend(zip(value, inner, strict=False))


_JSON_KEYS = (str, int, float, bool, type(None))
_TIME = (str, datetime.date)
_SUMMARY_FIELDS: Dict[str, tuple] = {
    "schema_version": (int,),
    "session_id": (str,),
    "experiment_name": (str,),
    "status": (str,),
    "started_at": _TIME,
    "updated_at": _TIME,
    "paused_at": _TIME,
    "pause_count": (int,),
    "resumed_at": (list,),
    "strategy": (dict, str),
    "search_space": (dict,),
    "search_space_version": (str, int, float),
    "metric": (dict,),
    "num_samples": (int,),
    "pause": (dict,),
    "best": (dict,),
    "trials": (list,),
    "versions": (dict,),
    "code": (dict,),
    "script": (str,),
    "resume_command": (str,),
}
"""The type of each field `write_summary` writes (any may also be null); other keys are left alone."""


def summary_problem(summary: Dict[str, Any]) -> Optional[str]:
    """What makes a loaded summary unusable (a field of the wrong type), else ``None``."""
    for key, kinds in _SUMMARY_FIELDS.items():
        value = summary.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"`{key}` is {type(value).__name__} {_short(value)}, not {' or '.join(k.__name__ for k in kinds)}"
    if not all(isinstance(item, _TIME) for item in summary.get("resumed_at") or []):
        return "`resumed_at` holds something other than times"
    metric = summary.get("metric") or {}
    for key in ("metric", "mode"):
        if not isinstance(metric.get(key), (str, type(None))):
            return f"`metric.{key}` is {type(metric.get(key)).__name__}, not str"
    return None


def read_summary(session_dir: Union[str, Path], required: bool = True) -> Dict[str, Any]:
    """The session summary as a dict; `SessionError` if missing (when required) or unreadable.

    The file may be hostile (copied, planted, damaged): it is read without following a link, at
    most `MAX_SUMMARY_BYTES`, as UTF-8, with no YAML aliases, and every known field is type-checked.
    """
    path = Path(session_dir).expanduser() / SUMMARY_FILE
    try:
        text = read_bounded(path, MAX_SUMMARY_BYTES)
    except FileNotFoundError:
        if not required:
            return {}
        raise SessionError(
            f"No session summary at {path}: {path.parent} is not a LightningTune session "
            f"(or it was cut short). List sessions with: lightning-bohb list {path.parent.parent}"
        ) from None
    except (OSError, ValueError) as err:
        raise SessionError(f"The session summary {path} is unreadable ({_reason(err)}).{_SUMMARY_HINT}") from None
    try:
        summary = load_yaml_data(text)
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise SessionError(f"The session summary {path} is unreadable ({_reason(err)}).{_SUMMARY_HINT}") from None
    if not isinstance(summary, dict):
        raise SessionError(f"The session summary {path} is corrupt (not a mapping).{_SUMMARY_HINT}")
    problem = summary_problem(summary)
    if problem:
        raise SessionError(f"The session summary {path} is corrupt ({problem}).{_SUMMARY_HINT}")
    return summary


_SUMMARY_HINT = " A running or resumed session rewrites it; to resume without it, move it out of the session folder."


def check_tune_state(session_dir: Union[str, Path], tune_folder: str = TUNE_FOLDER) -> None:
    """`SessionError` when Ray Tune's newest experiment snapshot in the session cannot be what Ray loads.

    Ray reads it only after it has started, and fails there with a traceback; this reads it first,
    as data: the JSON (at most `MAX_STATE_BYTES`), its shape, each trial's JSON, and the structure
    of the pickles inside (``pickletools``, which executes nothing). Absent snapshot: nothing to check.
    """
    folder = Path(session_dir) / tune_folder
    try:
        snapshots = sorted(p.name for p in folder.glob(_TUNE_SNAPSHOT) if not p.name.startswith("."))
    except OSError:
        return
    if not snapshots:
        return
    path = folder / snapshots[-1]  # the one Ray resumes from: the newest by name, as Ray picks it
    try:
        problem = _tune_state_problem(read_bounded(path, MAX_STATE_BYTES))
    except (OSError, ValueError, RecursionError) as err:
        problem = _reason(err)
    if problem:
        older = ""
        if len(snapshots) > 1:
            older = f" An older snapshot is beside it ({snapshots[-2]}): moving {path.name} out of the folder resumes from that one."
        raise SessionError(
            f"Ray Tune's experiment snapshot {path} is corrupt ({problem}), so the session cannot resume from it.{older} "
            "Otherwise restore the session folder from a backup."
        )


_TUNE_SNAPSHOT = "experiment_state-*.json"  # Ray's TuneController.CKPT_FILE_TMPL


def tune_trial_count(session_dir: Union[str, Path], tune_folder: str = TUNE_FOLDER) -> int:
    """How many trials Ray Tune's newest experiment snapshot in the session holds (0 without one).

    Read as JSON only (check it first with `check_tune_state`); the searcher's state is saved with
    each snapshot, so this is how many trials the searcher had created when the session stopped.
    """
    import json

    folder = Path(session_dir) / tune_folder
    try:
        snapshots = sorted(p.name for p in folder.glob(_TUNE_SNAPSHOT) if not p.name.startswith("."))
    except OSError:
        return 0
    if not snapshots:
        return 0
    state = json.loads(read_bounded(folder / snapshots[-1], MAX_STATE_BYTES))
    return len(state.get("trial_data") or []) if isinstance(state, dict) else 0


def _tune_state_problem(text: str) -> Optional[str]:
    import json

    state = json.loads(text)
    if not isinstance(state, dict) or not isinstance(state.get("trial_data"), list) or not isinstance(state.get("runner_data"), dict):
        return "not a mapping with `trial_data` and `runner_data`"
    for entry in state["trial_data"]:
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
            return "a trial entry is not a pair of JSON texts"
        for part in entry:
            problem = _embedded_pickles_problem(json.loads(part))
            if problem:
                return problem
    return None


def _embedded_pickles_problem(data: Any) -> Optional[str]:
    """The first broken pickle Ray embedded in JSON (``{"_type": "CLOUDPICKLE_FALLBACK", "value": hex}``)."""
    import pickletools

    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("_type") == "CLOUDPICKLE_FALLBACK":
                try:
                    for _ in pickletools.genops(bytes.fromhex(str(value.get("value")))):
                        pass
                except Exception as err:  # bad hex or a broken opcode stream: reading it executes nothing
                    return f"an embedded pickle is damaged: {_reason(err)}"
                continue
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _reason(err: BaseException) -> str:
    """An error's text on one line, at most 300 characters (parser errors quote the input)."""
    text = " ".join(str(getattr(err, "strerror", None) or err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
