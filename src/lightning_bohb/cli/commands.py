"""What each ``lightning-bohb`` command does, on top of the library API.

`status`, `list`, `clean` and `export-best` read ``session_state.summary.yaml`` only: they never
unpickle a session and never import Ray, torch or Lightning. `run` and `resume` import them lazily.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from lightning_bohb.core.optimizer import BEST_CONFIG_FILE  # imports neither Ray nor torch
from lightning_bohb.exceptions import EXIT_PAUSED, SessionError
from lightning_bohb.session.lock import lock_is_live, read_lock
from lightning_bohb.session.state import SESSION_PREFIX, SUMMARY_FILE, SessionStatus, read_summary
from lightning_bohb.utils.imports import extend_import_path

STALE = "RUNNING (stale: driver gone)"
FINISHED_TRIAL = "TERMINATED"


# -- run / resume ------------------------------------------------------------------------------
def run(study_file: str, experiment_dir: Optional[str] = None, experiment_name: Optional[str] = None) -> int:
    """Run the search a study file declares; 0 when it completes, `EXIT_PAUSED` when it pauses."""
    from lightning_bohb.cli.study import load_study
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    study = load_study(study_file)
    import_paths = [str(study.folder), os.getcwd()]
    extend_import_path(import_paths)
    optimizer = study.build_optimizer(experiment_dir, experiment_name)
    cli = TuneReflowCLI(import_paths=import_paths)
    try:
        cli.run(optimizer)
    except SessionPaused:
        return EXIT_PAUSED  # TuneReflowCLI printed the resume command
    return 0


def resume(session_dir: str, allow_code_changes: bool = False) -> int:
    """Continue a paused or interrupted session; 0 when it completes, `EXIT_PAUSED` when it pauses again."""
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    summary = read_summary(session_dir, required=False)
    if summary.get("status") == SessionStatus.COMPLETED:
        best = Path(session_dir) / BEST_CONFIG_FILE
        print(f"Session {session_dir} already completed; nothing to resume.")
        if best.is_file():
            print(f"Best config: {best}")
        return 0
    cli = TuneReflowCLI.resume(session_dir, allow_code_changes=allow_code_changes)  # its run() puts the session's recorded import path back
    try:
        cli.run(resume=True)
    except SessionPaused:
        return EXIT_PAUSED
    return 0


# -- pause -------------------------------------------------------------------------------------
def pause(session_dir: str, now: bool = False, timeout: float = 300.0, poll: float = 0.2) -> int:
    """Signal a running session's driver to pause, wait until it has, print the resume command.

    A driver still starting (its lock is newer than its summary) gets the signal only once it
    reports RUNNING: before that it has no pause handler yet.
    """
    session = Path(session_dir).expanduser()
    deadline = time.monotonic() + timeout
    lock = _running_lock(session)
    host, pid = lock.get("host"), int(lock.get("pid", -1))
    if host != socket.gethostname():
        raise SessionError(
            f"Session {session} runs on host {host!r} (pid {pid}), not on this one ({socket.gethostname()!r}). "
            f"Run this command on {host}: lightning-bohb pause {session}"
        )
    if not _driver_ready(session, lock):
        print(f"Session {session} is starting; waiting for it to run before pausing it...", flush=True)
        while not _driver_ready(session, lock):
            if time.monotonic() > deadline:
                raise SessionError(f"Session {session} did not start running within {timeout:g} s; nothing was sent.")
            if not lock_is_live(read_lock(session)):
                return _after_driver_exit(session)
            time.sleep(poll)
    signum = signal.SIGUSR2 if now else signal.SIGUSR1
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return _after_driver_exit(session)
    except PermissionError:
        raise SessionError(f"Not allowed to signal pid {pid}, the driver of session {session}; run as its owner.") from None
    how = "now, keeping the last checkpoints" if now else "at the next validation boundary"
    left = max(0.0, deadline - time.monotonic())
    print(f"Asked session {session} (pid {pid}) to pause {how}; waiting up to {left:.0f} s...", flush=True)
    while time.monotonic() < deadline:
        if not lock_is_live(read_lock(session)):  # the driver released its lock: it is done
            return _after_driver_exit(session)
        time.sleep(poll)
    raise SessionError(
        f"Session {session} did not pause within {timeout:g} s; it is still running. Check it with: "
        f"lightning-bohb status {session}; stop it now with: lightning-bohb pause --now {session}"
    )


def _running_lock(session: Path) -> Dict[str, Any]:
    """The live lock of a running session, else a `SessionError` that says what state it is in."""
    lock = read_lock(session)
    if lock_is_live(lock):
        return lock
    summary = read_summary(session)
    status = summary.get("status", "?")
    if status == SessionStatus.RUNNING:
        pid = (lock or {}).get("pid")
        raise SessionError(
            f"Session {session} is not running (status: RUNNING, but its driver{f' (pid {pid})' if pid else ''} "
            f"is gone). Resume it with: {_resume_command(summary, session)}"
        )
    raise SessionError(f"Session {session} is not running (status: {status}).")


def _driver_ready(session: Path, lock: Dict[str, Any]) -> bool:
    """Whether the lock's driver wrote a RUNNING summary (it does so once its signal handlers are in)."""
    try:
        summary = read_summary(session)
    except SessionError:
        return False  # a new session writes its first summary once it runs
    if summary.get("status") != SessionStatus.RUNNING:
        return False
    updated = _timestamp(summary.get("updated_at"))
    return updated is None or updated >= int(float(lock.get("since", 0)))


def _after_driver_exit(session: Path) -> int:
    summary = read_summary(session)
    status = summary.get("status")
    if status == SessionStatus.PAUSED:
        print(f"Session paused. Resume with:\n   {_resume_command(summary, session)}")
        return 0
    if status == SessionStatus.COMPLETED:
        print(f"Session {session} completed before it could pause; nothing to resume.")
        return 0
    raise SessionError(
        f"Session {session} stopped without pausing (status: {status}). Details: lightning-bohb status {session}"
    )


def _resume_command(summary: Dict[str, Any], session: Path) -> str:
    return summary.get("resume_command") or f"lightning-bohb resume {session}"


# -- status ------------------------------------------------------------------------------------
def status(session_dir: str, as_json: bool = False) -> int:
    session = Path(session_dir).expanduser()
    summary = read_summary(session)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    metric, mode = _metric(summary)
    state = state_label(session, summary)
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    lines = [
        ("Session", f"{summary.get('session_id', session.name)}  ({session})"),
        ("Experiment", summary.get("experiment_name")),
        ("State", state),
        ("Started", summary.get("started_at")),
        ("Updated", summary.get("updated_at")),
        ("Last paused", summary.get("paused_at") or "never"),
        ("Pauses", summary.get("pause_count", 0)),
        ("Resumed", ", ".join(summary.get("resumed_at") or []) or "never"),
        ("Strategy", _strategy(summary.get("strategy"))),
        ("Metric", f"{metric} ({mode})" if metric else "?"),
        ("Trials", _trial_count(summary)),
    ]
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        print(f"{label + ':':<{width}} {value if value is not None else '?'}")
    if trials:
        print()
        headers = ["TRIAL", "STATUS", "EPOCHS", f"LAST {metric or ''}".strip(), f"BEST {metric or ''}".strip(), "CONFIG"]
        rows = [
            [t.get("id"), t.get("status"), t.get("epochs"), _number(t.get("last")), _number(t.get("best")), _inline(t.get("config") or {})]
            for t in trials
        ]
        print_table(headers, rows)
    print()
    best = summary.get("best")
    if isinstance(best, dict) and metric in best:
        print(f"Best so far: trial {best.get('trial')}  {metric}={_number(best[metric])}  {_inline(best.get('config') or {})}")
    else:
        print("Best so far: no trial has reported yet")
    best_file = session / BEST_CONFIG_FILE
    if best_file.is_file():
        print(f"Best config: {best_file}")
    if summary.get("status") in (SessionStatus.PAUSED, SessionStatus.FAILED) or state == STALE:
        print(f"Resume with: {_resume_command(summary, session)}")
    return 0


def state_label(session: Path, summary: Dict[str, Any]) -> str:
    """The summary's status; a RUNNING session whose driver is gone is marked stale."""
    status = str(summary.get("status", "?"))
    if status == SessionStatus.RUNNING and not lock_is_live(read_lock(session)):
        return STALE
    return status


# -- list --------------------------------------------------------------------------------------
def list_sessions(experiment_dir: str) -> int:
    root = Path(experiment_dir).expanduser()
    if not root.is_dir():
        raise SessionError(f"Experiment folder not found: {root}. Give the folder you ran with (--experiment-dir).")
    rows = []
    for session, summary, problem in find_sessions(root):
        name = os.path.relpath(session, root)
        if problem:
            rows.append((("", name), [name, "UNREADABLE", "", "", "", _one_line(problem)]))
            continue
        metric, _ = _metric(summary)
        best = summary.get("best")
        best_text = f"{metric}={_number(best[metric])}" if isinstance(best, dict) and metric in best else ""
        rows.append(
            (
                (str(summary.get("started_at") or ""), name),
                [
                    name,
                    state_label(session, summary),
                    summary.get("started_at") or "",
                    summary.get("paused_at") or "",
                    _trial_count(summary, short=True),
                    best_text,
                ],
            )
        )
    if not rows:
        print(f"No sessions under {root}.")
        return 0
    rows.sort(key=lambda item: item[0])
    print_table(["SESSION", "STATE", "STARTED", "LAST PAUSED", "TRIALS", "BEST"], [row for _, row in rows])
    return 0


def find_sessions(root: Path) -> List[Tuple[Path, Dict[str, Any], Optional[str]]]:
    """``(session_dir, summary, problem)`` for every session directly below ``root`` or one level deeper."""
    found = {}
    for pattern in (f"*/{SESSION_PREFIX}*/{SUMMARY_FILE}", f"{SESSION_PREFIX}*/{SUMMARY_FILE}"):
        for path in root.glob(pattern):
            found.setdefault(path.parent, None)
    sessions = []
    for session in sorted(found):
        try:
            sessions.append((session, read_summary(session), None))
        except SessionError as err:
            sessions.append((session, {}, str(err)))
    return sessions


# -- clean -------------------------------------------------------------------------------------
def clean(experiment_dir: str, older_than: float, dry_run: bool = False) -> int:
    """Remove finished sessions (COMPLETED, PAUSED, FAILED) idle for more than ``older_than`` seconds."""
    root = Path(experiment_dir).expanduser()
    if not root.is_dir():
        raise SessionError(f"Experiment folder not found: {root}.")
    now = time.time()
    removed = kept = 0
    for session, summary, problem in find_sessions(root):
        status = summary.get("status")
        finished = status in (SessionStatus.COMPLETED, SessionStatus.PAUSED, SessionStatus.FAILED)
        if problem or not finished or lock_is_live(read_lock(session)):
            kept += 1
            continue
        last = last_activity(session, summary)
        if now - last <= older_than:
            kept += 1
            continue
        when = datetime.datetime.fromtimestamp(last).isoformat(timespec="seconds")
        print(f"{'would remove' if dry_run else 'removing'} {session}  ({status}, last active {when})")
        if not dry_run:
            shutil.rmtree(session)
        removed += 1
    verb = "Would remove" if dry_run else "Removed"
    print(f"{verb} {removed} session{'s' * (removed != 1)}; kept {kept}.")
    return 0


def last_activity(session: Path, summary: Dict[str, Any]) -> float:
    """The summary's ``updated_at`` as a timestamp, else the summary file's modification time."""
    updated = _timestamp(summary.get("updated_at"))
    return updated if updated is not None else (session / SUMMARY_FILE).stat().st_mtime


def _timestamp(value: Any) -> Optional[float]:
    """An ISO time from a summary (local time, as `now_iso` writes it) as a POSIX timestamp."""
    if isinstance(value, datetime.datetime):  # YAML reads an unquoted timestamp as a datetime
        return value.timestamp()
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


# -- export-best -------------------------------------------------------------------------------
def export_best(session_dir: str, output: Optional[str]) -> int:
    session = Path(session_dir).expanduser()
    if not session.is_dir():
        raise SessionError(f"Session not found: {session} is not a directory. List sessions with: lightning-bohb list")
    best = session / BEST_CONFIG_FILE
    if not best.is_file():
        summary = read_summary(session)
        state = state_label(session, summary)
        hint = (
            f" Resume it to finish the search: {_resume_command(summary, session)}"
            if summary.get("status") != SessionStatus.COMPLETED
            else " No trial reported the metric."
        )
        raise SessionError(
            f"Session {session} has no {BEST_CONFIG_FILE} (status: {state}); it is written when the search "
            f"completes.{hint}"
        )
    text = best.read_text()
    summary = read_summary(session, required=False)
    if summary.get("status", SessionStatus.COMPLETED) != SessionStatus.COMPLETED:
        print(
            f"note: session {session} is {state_label(session, summary)}; this is the best config so far.",
            file=sys.stderr,
        )
    if output in (None, "-"):
        sys.stdout.write(text)
        return 0
    target = Path(output).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"Wrote the best config of {session} to {target}")
    return 0


# -- formatting --------------------------------------------------------------------------------
def print_table(headers: List[str], rows: List[List[Any]]) -> None:
    """A plain table with `rich`: one line per row when stdout is not a terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    terminal = console.is_terminal
    if not terminal:
        console = Console(highlight=False, width=100_000)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(Text(header), no_wrap=not terminal)
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    if terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _metric(summary: Dict[str, Any]) -> Tuple[Optional[str], str]:
    config = summary.get("metric") or {}
    if not isinstance(config, dict):
        return None, "min"
    return config.get("metric"), config.get("mode", "min")


def _trial_count(summary: Dict[str, Any], short: bool = False) -> str:
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    done = sum(1 for t in trials if t.get("status") == FINISHED_TRIAL)
    total = summary.get("num_samples") or len(trials)
    if short:
        return f"{done}/{total}"
    return f"{done}/{total} done, {len(trials)} started"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _strategy(strategy: Any) -> str:
    if not isinstance(strategy, dict):
        return "?" if strategy is None else str(strategy)
    params = {k: v for k, v in strategy.items() if k != "name" and v is not None}
    return f"{strategy.get('name', '?')} ({_inline(params)})" if params else str(strategy.get("name", "?"))


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _inline(mapping: Dict[str, Any]) -> str:
    if not isinstance(mapping, dict):
        return str(mapping)
    return ", ".join(f"{key}={_number(value)}" for key, value in mapping.items())
