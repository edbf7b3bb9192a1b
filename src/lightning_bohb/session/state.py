"""`TuneSessionState`: everything needed to resume a session, and its human-readable summary.

``session_state.json`` is plain data with a format version (`lightning_bohb.session.state_format`), and
holds the base config's content, not its path; a state of an older format (0.1.0's pickled
``session_state.pkl``) is read through `lightning_bohb.session.migrations` and written back as JSON.
``session_state.summary.yaml`` is plain YAML, read by `status`, `list` and the resume pre-checks.
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
from lightning_bohb.utils.layout import LEGACY_STATE_FILE, STATE_FILE, STATE_FILES, SUMMARY_FILE, TUNE_FOLDER

SCHEMA_VERSION = 1
"""Of the summary (`SUMMARY_FILE`); the state file has its own (`state_format.FORMAT_VERSION`)."""


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

    @property
    def pause_count(self) -> int:
        return len(self.paused_at)

    def save(self, session_dir: Union[str, Path]) -> Path:
        """Write the state as `STATE_FILE` (JSON of the current format); a format-0 file beside it goes."""
        import json

        from lightning_bohb.session.state_format import state_data

        path = Path(session_dir) / STATE_FILE
        atomic_write(path, json.dumps(state_data(self), indent=1, ensure_ascii=False) + "\n")
        (path.parent / LEGACY_STATE_FILE).unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, session_dir: Union[str, Path], trust: bool = False) -> "TuneSessionState":
        """Load a session (of any format this release reads), with a clear `SessionError` for every way that fails.

        Nothing is read past the file's bytes before `lightning_bohb.session.trust.check_trusted` (owner and
        mode of the folder and its state files) passes, unless ``trust`` (or ``LIGHTNING_BOHB_TRUST=1``).
        """
        from lightning_bohb.session.migrations import BACKUP_HINT, migrate, read_format_0
        from lightning_bohb.session.trust import check_trusted, trust_overridden

        session_dir = Path(session_dir).expanduser()
        if not session_dir.is_dir():
            raise SessionError(
                f"Session state not found: {session_dir} is not a directory. Check the exact path printed "
                f"when pausing, or list sessions: lightning-bohb list {session_dir.parent}"
            )
        path = state_file(session_dir)
        if path is None:
            raise SessionError(
                f"Session state not found: {session_dir / STATE_FILE} does not exist, so {session_dir} is not a LightningTune "
                f"session. Sessions look like <experiment_dir>/<name>/session_<id>/; list them with: "
                f"lightning-bohb list {session_dir.parent}"
            )
        summary = read_summary(session_dir, required=False)
        check_schema(summary.get("schema_version", SCHEMA_VERSION), session_dir / SUMMARY_FILE)
        check_trusted(session_dir, trust)
        try:
            data = read_bounded(path, MAX_STATE_BYTES, binary=True, follow_link=trust_overridden(trust))
        except (OSError, ValueError) as err:
            raise SessionError(f"The session state {path} cannot be read ({error_text(err)}).") from None
        corrupt = f"The session state {path} is corrupt ({{}}). {BACKUP_HINT.format(tune=session_dir / TUNE_FOLDER)}"
        if path.name == LEGACY_STATE_FILE:
            old = read_format_0(data, path, session_dir)
            try:
                plain = migrate(0, old)
            except Exception as err:  # an object of the pickle this release cannot write as data
                raise SessionError(
                    f"The session state {path} (format 0) cannot be brought to this release's format "
                    f"({type(err).__name__}: {error_text(err)}); resume it with the release that paused it."
                ) from None
        else:
            plain = _read_json(data, path, corrupt)
        return cls(**_fields(plain, path, corrupt))


def state_file(session_dir: Union[str, Path]) -> Optional[Path]:
    """The session's state file: `STATE_FILE`, else a format-0 `LEGACY_STATE_FILE`, else None."""
    for name in STATE_FILES:
        path = Path(session_dir) / name
        if path.is_file() or path.is_symlink():
            return path
    return None


def _read_json(data: bytes, path: Path, corrupt: str) -> Dict[str, Any]:
    """Format `state_format.FORMAT_VERSION` data from a `STATE_FILE`'s bytes, migrated from an older format."""
    import json

    from lightning_bohb.session.migrations import migrate
    from lightning_bohb.session.state_format import check_version

    try:
        plain = json.loads(data.decode("utf-8"))
        check_plain(plain)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SessionError(corrupt.format(f"not JSON: {error_text(err)}")) from None
    if not isinstance(plain, dict):
        raise SessionError(corrupt.format("not a mapping"))
    return migrate(check_version(plain, path), plain)


def _fields(plain: Dict[str, Any], path: Path, corrupt: str) -> Dict[str, Any]:
    """`TuneSessionState`'s fields from current-format data: its classes imported (with the session's
    recorded import path added when one does not import), its objects rebuilt."""
    from lightning_bohb.session.migrations import attribute_error, import_error, with_import_path
    from lightning_bohb.session.state_format import data_problem, state_fields

    problem = data_problem(plain)
    if problem:
        raise SessionError(corrupt.format(problem))
    try:
        try:
            fields = state_fields(plain)
        except ImportError:
            if not with_import_path(plain["sys_path"]):  # a class of the user's only the session's import path holds
                raise
            fields = state_fields(plain)
    except ImportError as err:
        raise SessionError(import_error(path, err)) from None
    except AttributeError as err:
        raise SessionError(attribute_error(path, err)) from None
    except ConfigError as err:
        raise SessionError(f"The session state {path} cannot be resumed by this release: {err}") from None
    except Exception as err:  # damaged data can fail in any way (KeyError, TypeError, a bad pickle...)
        raise SessionError(corrupt.format(f"{type(err).__name__}: {error_text(err)}")) from None
    if fields["status"] not in {status.value for status in SessionStatus}:
        raise SessionError(corrupt.format(f"`status` is {_short(fields['status'])}"))
    fields["status"] = SessionStatus(fields["status"])
    return fields


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
        raise SessionError(f"The session summary {path} is unreadable ({error_text(err)}).{_SUMMARY_HINT}") from None
    try:
        summary = load_yaml_data(text)
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise SessionError(f"The session summary {path} is unreadable ({error_text(err)}).{_SUMMARY_HINT}") from None
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
        problem = error_text(err)
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
                    return f"an embedded pickle is damaged: {error_text(err)}"
                continue
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def error_text(err: BaseException) -> str:
    """An error's text on one line, at most 300 characters (parser errors quote the input)."""
    text = " ".join(str(getattr(err, "strerror", None) or err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
