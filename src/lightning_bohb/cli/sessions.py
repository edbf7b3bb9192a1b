"""What the console commands read about sessions from their files (summary and lock, never a pickle):
finding them, their state, their metric and trials, the command that resumes one.

Nothing here imports Ray, torch or Lightning.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.pause.trial_status import TrialStatus
from lightning_bohb.session.backend import SessionBackend, open_session, sessions_under
from lightning_bohb.session.owner_record import lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary

STALE = "RUNNING (stale: driver gone)"


def state_label(session: Path, summary: Dict[str, Any]) -> str:
    """The summary's status; a RUNNING session whose driver is gone is marked stale."""
    status = str(summary.get("status", "?"))
    if status == SessionStatus.RUNNING and not lock_is_live(read_lock(session)):
        return STALE
    return status


def find_sessions(experiment_dir: str) -> Iterator[Tuple[SessionBackend, str, Dict[str, Any], Optional[str]]]:
    """``(session, name, summary, problem)`` for every session directly below ``experiment_dir`` (a folder or a
    URI) or one level deeper, in order; ``name`` is relative to ``experiment_dir``. A stored session is read into
    its working copy while the caller looks at it."""
    for session, name in sessions_under(experiment_dir):
        try:
            yield session, name, read_summary(session.refresh()), None
        except SessionError as err:
            yield session, name, {}, str(err)
        except Exception as err:  # one bad session never hides the others
            yield session, name, {}, f"{type(err).__name__}: {err}"


def resume_command(session: Union[str, Path]) -> str:
    """The command that resumes ``session``, built from its path or URI: never the summary's ``resume_command``,
    which a planted file could make say anything (``lightning-bohb resume`` resumes script sessions too)."""
    return open_session(session).resume_command()


def metric_config(summary: Dict[str, Any]) -> Tuple[Optional[str], str]:
    config = summary.get("metric") or {}
    if not isinstance(config, dict):
        return None, "min"
    return config.get("metric"), config.get("mode", "min")


def trial_count(summary: Dict[str, Any], short: bool = False) -> str:
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    done = sum(1 for t in trials if t.get("status") == TrialStatus.TERMINATED)
    total = summary.get("num_samples") or len(trials)
    if short:
        return f"{done}/{total}"
    return f"{done}/{total} done, {len(trials)} started"


def timestamp(value: Any) -> Optional[float]:
    """An ISO time from a summary (local time, as `now_iso` writes it) as a POSIX timestamp."""
    if not value:
        return None
    try:
        if isinstance(value, datetime.datetime):  # YAML reads an unquoted timestamp as a datetime
            return value.timestamp()
        return datetime.datetime.fromisoformat(str(value)).timestamp()
    except (ValueError, OverflowError, OSError):  # not a time, or one the platform cannot convert
        return None

