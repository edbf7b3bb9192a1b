"""What each ``lightning-bohb`` command does, on top of the library API.

`status`, `list`, `clean` and `export-best` read ``session_state.summary.yaml`` only: they never
unpickle a session and never import Ray, torch or Lightning. `run` and `resume` import them lazily.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from lightning_bohb.cli.format import assignments, duration, number
from lightning_bohb.core.optimizer import BEST_CONFIG_FILE  # imports neither Ray nor torch
from lightning_bohb.core.rerun import rerun_command, threads_of
from lightning_bohb.exceptions import EXIT_PAUSED, SessionError
from lightning_bohb.pause.remote import CONTROL_FILE  # imports neither Ray nor torch
from lightning_bohb.session.lock import LOCK_FILE, SessionLock, driver_identity_problem, heartbeat_age, lock_is_live, read_lock
from lightning_bohb.session.state import MAX_SUMMARY_BYTES, SESSION_PREFIX, SUMMARY_FILE, SessionStatus, read_summary
from lightning_bohb.session.store import SessionStore, SessionView, find_store_sessions
from lightning_bohb.utils.files import read_bounded
from lightning_bohb.utils.imports import extend_import_path
from lightning_bohb.utils.uris import is_uri, join_uri, split_query

STALE = "RUNNING (stale: driver gone)"
FINISHED_TRIAL = "TERMINATED"


# -- run / resume ------------------------------------------------------------------------------
def run(
    study_file: str,
    experiment_dir: Optional[str] = None,
    experiment_name: Optional[str] = None,
    session_id: Optional[str] = None,
    resume_if_exists: bool = False,
) -> int:
    """Run the search a study file declares; 0 when it completes, `EXIT_PAUSED` when it pauses.

    ``session_id`` names the session (``session_<id>``; default: a new time-stamped id). With
    ``resume_if_exists`` the session (default id: the study file's stem) is continued when it exists
    (`continue_study`): one command for a batch job that is requeued, restarted or run by cron.
    """
    from lightning_bohb.cli.study import load_study
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused
    from lightning_bohb.session.state import check_session_id, state_file

    study = load_study(study_file)
    if resume_if_exists and session_id is None:
        session_id = study.path.stem
        if not _is_session_id(session_id):
            raise SessionError(
                f"--resume-if-exists names the session after the study file, but {session_id!r} is not a valid session id "
                "(letters, digits, '.', '_', '-'). Give one: --session-id NAME."
            )
    if session_id is not None:
        check_session_id(session_id)
    import_paths = study.import_folders()  # as `python main.py fit` has its own folder: the study's, its base config's
    extend_import_path(import_paths)
    optimizer = study.build_optimizer(experiment_dir, experiment_name)
    if resume_if_exists:
        session: Any = join_uri(str(optimizer.default_output_dir()), f"{SESSION_PREFIX}{session_id}")
        if is_uri(session):
            if SessionStore(session).is_session():
                return continue_study(session, optimizer)
        else:
            session = Path(session)
            if state_file(session) is not None:
                return continue_study(session, optimizer)
        print(printable(f"No session {session} yet; starting it."), flush=True)
    cli = TuneReflowCLI(session_id=session_id, import_paths=import_paths)
    try:
        cli.run(optimizer)
    except SessionPaused:
        return EXIT_PAUSED  # TuneReflowCLI printed the resume command
    return 0


def _is_session_id(text: str) -> bool:
    from lightning_bohb.exceptions import ConfigError
    from lightning_bohb.session.state import check_session_id

    try:
        check_session_id(text)
    except ConfigError:
        return False
    return True


_SHAPE = ("num_samples", "max_concurrent_trials", "cpus_per_trial", "gpus_per_trial")
_SEARCH = ("search space", "metric", "strategy", "base config")


def continue_study(session: Union[str, Path], optimizer: Any) -> int:
    """Continue ``session`` for ``lightning-bohb run STUDY --resume-if-exists`` (see `run`).

    Refused when the study now declares another search (search space, metric, strategy or base
    config) than the session runs; new ``num_samples``, ``max_concurrent_trials``, ``cpus_per_trial``
    or ``gpus_per_trial`` in the study are taken over as ``resume --num-samples ...`` would.
    A COMPLETED session is left as it is unless the study's ``num_samples`` is larger.
    """
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    config = optimizer.optimization_config
    with SessionView(session) as view:
        summary = read_summary(view.path, required=False)
        if summary.get("status") == SessionStatus.COMPLETED and config.num_samples <= (summary.get("num_samples") or 0):
            print(printable(f"Session {session} already completed; nothing to resume."))
            if (view.path / BEST_CONFIG_FILE).is_file():
                print(printable(f"Best config: {view.of(BEST_CONFIG_FILE)}"))
            return 0
    print(printable(f"Session {session} exists; continuing it."), flush=True)
    cli = TuneReflowCLI.resume(session)
    try:
        state = cli.state
        assert state is not None
        changed = [what for what, ok in zip(_SEARCH, _same_search(state, optimizer), strict=True) if not ok]
        if changed:
            raise SessionError(
                f"The study now declares a different {' and '.join(changed)} than session {session} runs; continuing it "
                "would mix two searches. Restore the study file, or start a new session: --session-id OTHER_NAME."
            )
        recorded = state.optimization_config
        shape = {name: getattr(config, name) for name in _SHAPE if getattr(config, name) != getattr(recorded, name)}
        cli.session.reshape(fix="Set optimization.num_samples to {created} or more in the study", **shape)
        for name, value in shape.items():
            if value is not None:
                print(printable(f"{name}: {getattr(recorded, name)} -> {value} (from the study)"), flush=True)
    except BaseException:
        cli.session.close()
        raise
    try:
        cli.run(resume=True)
    except SessionPaused:
        return EXIT_PAUSED
    return 0


def _same_search(state: Any, optimizer: Any) -> Tuple[bool, bool, bool, bool]:
    """Whether the session's search space, metric, strategy and base config are the study's now."""
    space, now = state.search_space, optimizer.search_space
    return (
        getattr(space, "space", space) == getattr(now, "space", now),
        space.get_metric_config() == now.get_metric_config(),
        state.strategy.describe() == optimizer.strategy.describe(),
        state.base_config == optimizer.base_config,
    )


def resume(session_dir: str, allow_code_changes: bool = False, force: bool = False, trust: bool = False, **shape: Any) -> int:
    """Continue a paused or interrupted session; 0 when it completes, `EXIT_PAUSED` when it pauses again.

    Before Ray starts: the summary is read as data only, the folder's owner and mode are checked
    before anything is unpickled (``trust`` skips that), then the code the trials will run is compared
    with the code recorded at the pause. ``shape``: ``num_samples``, ``max_concurrent_trials``,
    ``cpus_per_trial``, ``gpus_per_trial`` to change (`TuneSession.resume`); a COMPLETED session
    continues only with a larger ``num_samples``.
    """
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    with SessionView(session_dir) as view:
        summary = read_summary(view.path, required=False)
        more = shape.get("num_samples") is not None and shape["num_samples"] > (summary.get("num_samples") or 0)
        if summary.get("status") == SessionStatus.COMPLETED and not more:
            print(printable(f"Session {session_dir} already completed; nothing to resume."))
            if (view.path / BEST_CONFIG_FILE).is_file():
                print(printable(f"Best config: {view.of(BEST_CONFIG_FILE)}"))
            return 0
    # Its run() puts the session's recorded import path back.
    cli = TuneReflowCLI.resume(session_dir, allow_code_changes=allow_code_changes, force=force, trust=trust, **shape)
    try:
        cli.run(resume=True)
    except SessionPaused:
        return EXIT_PAUSED
    return 0


# -- pause -------------------------------------------------------------------------------------
def pause(session_dir: str, now: bool = False, timeout: float = 300.0, poll: float = 0.2, within: Optional[float] = None) -> int:
    """Ask a running session's driver to pause, wait until it has, print the resume command.

    Through Ray (its control actor, `lightning_bohb.pause.remote`) when ``RAY_ADDRESS`` is set or the
    driver runs on another host; else by a signal (SIGUSR1; SIGUSR2 with ``now``) to the verified pid.

    ``within``: seconds by which the pause must be saved (trials checkpoint at a step if their epoch
    end comes later; then the driver quits), instead of the session's ``grace_period``.

    A driver still starting (its lock is newer than its summary) gets the signal only once it
    reports RUNNING: before that it has no pause handler yet.

    A session in object storage (a URI) is read from its store (`SessionView`); ``within`` is put there.
    """
    with SessionView(session_dir) as view:
        return _pause(view, now, timeout, poll, within)


def _pause(view: SessionView, now: bool, timeout: float, poll: float, within: Optional[float]) -> int:
    session, name = view.path, view.name
    deadline = time.monotonic() + timeout
    lock = _running_lock(session, name)
    host, pid = lock.get("host"), int(lock.get("pid", -1))
    through_ray = bool(os.environ.get("RAY_ADDRESS")) or host != socket.gethostname()
    if host != socket.gethostname() and not os.environ.get("RAY_ADDRESS") and not (session / CONTROL_FILE).is_file():
        raise SessionError(
            f"Session {name} runs on host {host!r} (pid {pid}, heartbeat {heartbeat_age(lock):.0f} s ago), not on this "
            f"one ({socket.gethostname()!r}). Run this command on {host}, or on a node of its Ray cluster with RAY_ADDRESS "
            f"set: lightning-bohb pause {shlex.quote(name)}"
        )
    if not _driver_ready(session, lock):
        print(printable(f"Session {name} is starting; waiting for it to run before pausing it..."), flush=True)
        while not _driver_ready(view.refresh(SUMMARY_FILE, LOCK_FILE), lock):
            if time.monotonic() > deadline:
                raise SessionError(f"Session {name} did not start running within {timeout:g} s; nothing was sent.")
            if not lock_is_live(read_lock(session)):
                return _after_driver_exit(session, name)
            time.sleep(poll)
    signum = signal.SIGUSR2 if now else signal.SIGUSR1
    if through_ray:
        while time.monotonic() < deadline and lock_is_live(read_lock(session)):
            if (view.refresh(CONTROL_FILE, LOCK_FILE) / CONTROL_FILE).is_file():
                break
            time.sleep(poll)  # written just after the RUNNING summary
        return _wait_for_pause(view, deadline, timeout, poll, _pause_through_ray(view, host, now, within))
    problem = driver_identity_problem(lock)  # a reused pid or a planted lock must never be signalled
    if problem:
        raise SessionError(
            f"Not signalling pid {pid}: {problem}. The lock {view.of(LOCK_FILE)} does not name this session's driver; "
            f"nothing was sent. Check the session with: lightning-bohb status {shlex.quote(name)}"
        )
    if within is not None and not now:
        if view.store is not None:
            raise SessionError(
                f"Session {name} is in object storage: its driver takes `pause --within` through Ray only (set RAY_ADDRESS "
                f"to its cluster), or pause it without --within: lightning-bohb pause {shlex.quote(name)}"
            )
        from lightning_bohb.pause.state import write_pause_within

        write_pause_within(session, within)  # read by the driver when the signal arrives
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return _after_driver_exit(session, name)
    except PermissionError:
        raise SessionError(f"Not allowed to signal pid {pid}, the driver of session {name}; run as its owner.") from None
    how = "now, keeping the last checkpoints" if now else "at the next validation boundary"
    if within is not None and not now:
        how = f"within {within:g} s (at a training step where the next validation comes later)"
    return _wait_for_pause(view, deadline, timeout, poll, f"Asked session {name} (pid {pid}) to pause {how}")


def _pause_through_ray(view: SessionView, host: Any, now: bool, within: Optional[float]) -> str:
    """Ask the driver through its control actor in the Ray cluster (``RAY_ADDRESS``, else this node's
    Ray); what was done. With ``RAY_ADDRESS`` set this is the only route, also on the driver's host."""
    from lightning_bohb.pause.remote import send_request
    from lightning_bohb.pause.state import PAUSE_WITHIN_FILE, take_pause_within, write_pause_within

    session, name = view.path, view.name
    if within is not None and not now:
        write_pause_within(session, within)  # read by the driver when the request arrives
        if view.store is not None:
            view.store.push(PAUSE_WITHIN_FILE)
    try:
        driver = send_request(session, "quit" if now else "pause")
    except SessionError as err:
        if within is not None and not now:
            take_pause_within(session)  # not left for a later signal
            if view.store is not None:
                view.store.delete(PAUSE_WITHIN_FILE)
        if host == socket.gethostname() and view.store is None:
            raise SessionError(f"{err} On the driver's host, without RAY_ADDRESS, the driver is signalled instead.") from None
        raise
    how = "now, keeping the last checkpoints" if now else "at the next validation boundary"
    if within is not None and not now:
        how = f"within {within:g} s (at a training step where the next validation comes later)"
    where = f"pid {driver.get('pid', '?')} on {driver.get('host', host)}"
    return f"Asked session {name} ({where}) through Ray to pause {how}"


def _wait_for_pause(view: SessionView, deadline: float, timeout: float, poll: float, asked: str) -> int:
    left = max(0.0, deadline - time.monotonic())
    print(printable(f"{asked}; waiting up to {left:.0f} s..."), flush=True)
    while time.monotonic() < deadline:
        if not lock_is_live(read_lock(view.refresh(LOCK_FILE))):  # the driver released its lock: it is done
            return _after_driver_exit(view.refresh(SUMMARY_FILE), view.name)
        time.sleep(poll)
    name = shlex.quote(view.name)
    raise SessionError(
        f"Session {view.name} did not pause within {timeout:g} s; it is still running. Check it with: "
        f"lightning-bohb status {name}; stop it now with: lightning-bohb pause --now {name}"
    )


def _running_lock(session: Path, name: str) -> Dict[str, Any]:
    """The live lock of a running session, else a `SessionError` that says what state it is in."""
    lock = read_lock(session)
    if lock_is_live(lock):
        return lock
    summary = read_summary(session)
    status = summary.get("status", "?")
    if status == SessionStatus.RUNNING:
        pid = lock["pid"] if lock and lock["pid"] > 0 else None  # an unreadable lock names none
        raise SessionError(
            f"Session {name} is not running (status: RUNNING, but its driver{f' (pid {pid})' if pid else ''} "
            f"is gone). Resume it with: {_resume_command(summary, name)}"
        )
    raise SessionError(f"Session {name} is not running (status: {status}).")


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


def _after_driver_exit(session: Path, name: str) -> int:
    summary = read_summary(session)
    status = summary.get("status")
    if status == SessionStatus.PAUSED:
        print(printable(f"Session paused. Resume with:\n   {_resume_command(summary, name)}", keep_newlines=True))
        return 0
    if status == SessionStatus.COMPLETED:
        print(printable(f"Session {name} completed before it could pause; nothing to resume."))
        return 0
    raise SessionError(
        f"Session {name} stopped without pausing (status: {status}). Details: lightning-bohb status {shlex.quote(name)}"
    )


def _resume_command(summary: Dict[str, Any], session: Union[str, Path]) -> str:
    """The command that resumes ``session``, built from its path or URI: never the summary's ``resume_command``,
    which a planted file could make say anything (``lightning-bohb resume`` resumes script sessions too)."""
    from lightning_bohb.session.runner import console_command  # imports neither Ray nor torch

    where = str(session) if is_uri(session) else str(Path(session).expanduser().absolute())
    return f"{console_command()} resume {shlex.quote(where)}"


# -- status ------------------------------------------------------------------------------------
def status(session_dir: str, as_json: bool = False) -> int:
    with SessionView(session_dir) as view:
        return _status(view, as_json)


def _status(view: SessionView, as_json: bool) -> int:
    session = view.path
    summary = read_summary(session)
    if as_json:  # JSON escapes every control character in strings (ensure_ascii)
        print(json.dumps(summary, indent=2, default=str))
        return 0
    metric, mode = _metric(summary)
    state = state_label(session, summary)
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    lines = [
        ("Session", f"{summary.get('session_id', session.name)}  ({view.name})"),
        ("Experiment", summary.get("experiment_name")),
        ("State", state),
        ("Driver", _driver_line(session)),
        ("Started", summary.get("started_at")),
        ("Updated", summary.get("updated_at")),
        ("Last paused", summary.get("paused_at") or "never"),
        ("Pauses", summary.get("pause_count", 0)),
        ("Resumed", ", ".join(str(when) for when in summary.get("resumed_at") or []) or "never"),
        ("Strategy", _strategy(summary.get("strategy"))),
        ("Metric", f"{metric} ({mode})" if metric else "?"),
        ("Trials", _trial_count(summary)),
    ]
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        print(f"{label + ':':<{width}} {printable(value) if value is not None else '?'}")
    if trials:
        print()
        headers = ["TRIAL", "STATUS", "EPOCHS", "TIME", f"LAST {metric or ''}".strip(), f"BEST {metric or ''}".strip(), "CONFIG"]
        outcome = _outcomes(summary)
        rows = [
            [t.get("id"), outcome(t), t.get("epochs"), duration(t.get("time_s")), number(t.get("last")), number(t.get("best")),
             _inline(t.get("config") or {})]
            for t in trials
        ]
        print_table(headers, rows)
    print()
    best = summary.get("best")
    if isinstance(best, dict) and metric in best:
        print(printable(f"Best so far: trial {best.get('trial')}  {metric}={number(best[metric])}  {_inline(best.get('config') or {})}"))
    else:
        print("Best so far: no trial has reported yet")
    if (session / BEST_CONFIG_FILE).is_file():
        print(printable(f"Best config: {view.of(BEST_CONFIG_FILE)}"))
    if summary.get("status") in (SessionStatus.PAUSED, SessionStatus.FAILED) or state == STALE:
        print(printable(f"Resume with: {_resume_command(summary, view.name)}"))
    return 0


def _outcomes(summary: Dict[str, Any]) -> Any:
    """A summary row's outcome (``finished``, ``stopped early``, ``paused on request``...: `trial_outcome`)."""
    from lightning_bohb.session.history import BRACKET_STRATEGIES, trial_outcome

    pause = summary.get("pause") if isinstance(summary.get("pause"), dict) else {}
    held = set(pause.get("held_trials") or []) if isinstance(pause.get("held_trials"), list) else set()
    max_epochs = summary.get("max_epochs") if isinstance(summary.get("max_epochs"), int) else None
    strategy = summary.get("strategy") if isinstance(summary.get("strategy"), dict) else {}
    running = summary.get("status") == SessionStatus.RUNNING
    brackets = strategy.get("name") in BRACKET_STRATEGIES

    def outcome(row: Dict[str, Any]) -> str:
        epochs = row.get("epochs") if isinstance(row.get("epochs"), int) else 0
        return trial_outcome(row.get("status"), epochs, max_epochs, row.get("id") in held, running, brackets)

    return outcome


def _driver_line(session: Path) -> str:
    """Where the session's driver runs and whether it is alive, from its lock record (host, pid, heartbeat)."""
    lock = read_lock(session)
    if not lock or lock.get("invalid") or int(lock.get("pid", -1)) <= 0:
        return "none (no driver holds the session)"
    alive = "alive" if lock_is_live(lock) else "gone"
    return f"{lock.get('host')} pid {lock.get('pid')} ({alive}, heartbeat {heartbeat_age(lock):.0f} s ago)"


def state_label(session: Path, summary: Dict[str, Any]) -> str:
    """The summary's status; a RUNNING session whose driver is gone is marked stale."""
    status = str(summary.get("status", "?"))
    if status == SessionStatus.RUNNING and not lock_is_live(read_lock(session)):
        return STALE
    return status


# -- list --------------------------------------------------------------------------------------
def list_sessions(experiment_dir: str) -> int:
    root: Any = experiment_dir
    if not is_uri(experiment_dir):
        root = Path(experiment_dir).expanduser()
        if not root.is_dir():
            raise SessionError(f"Experiment folder not found: {root}. Give the folder you ran with (--experiment-dir).")
    rows = []
    for session, summary, problem, name in _sessions_in(root):
        if problem:
            problem = problem.replace(str(session / SUMMARY_FILE), SUMMARY_FILE)  # the row names the session
            rows.append((("", name), [name, "UNREADABLE", "", "", "", _one_line(problem)]))
            continue
        metric, _ = _metric(summary)
        best = summary.get("best")
        best_text = f"{metric}={number(best[metric])}" if isinstance(best, dict) and metric in best else ""
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


def _sessions_in(root: Union[str, Path]) -> Iterator[Tuple[Path, Dict[str, Any], Optional[str], str]]:
    """`find_sessions` with each session's name relative to ``root``; for a URI, each session is read from
    its store into a temporary view while the caller looks at it."""
    if not is_uri(root):
        for session, summary, problem in find_sessions(Path(root)):
            yield session, summary, problem, os.path.relpath(session, root)
        return
    for uri in find_store_sessions(str(root)):
        with SessionView(uri) as view:
            try:
                summary, problem = read_summary(view.path), None
            except SessionError as err:
                summary, problem = {}, str(err)
            yield view.path, summary, problem, uri[len(split_query(str(root))[0].rstrip("/")) + 1 :]


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
        except Exception as err:  # one bad session never hides the others
            sessions.append((session, {}, f"{type(err).__name__}: {err}"))
    return sessions


# -- clean -------------------------------------------------------------------------------------
def clean(experiment_dir: str, older_than: float, dry_run: bool = False) -> int:
    """Remove finished sessions (COMPLETED, PAUSED, FAILED) idle for more than ``older_than`` seconds.

    Never follows a symbolic link out of ``experiment_dir``: a linked experiment folder or session is
    skipped with a note. A session is deleted only while holding its lock, so a resume starting at the
    same moment either holds the lock first (the session is kept) or finds the session gone. A session
    that cannot be removed is reported and the others are still cleaned (exit status 1).
    """
    now = time.time()
    removed = kept = failed = 0
    if is_uri(experiment_dir):
        for uri in find_store_sessions(experiment_dir):
            try:
                with SessionView(uri) as view:
                    gone = _clean_stored(view, now, older_than, dry_run)
            except Exception as err:  # one session's trouble never stops the others
                print(printable(f"warning: could not remove {uri}: {_one_line(str(err))}"), file=sys.stderr)
                failed += 1
                continue
            removed += gone
            kept += not gone
        return _cleaned(removed, kept, failed, dry_run)
    root = Path(experiment_dir).expanduser()
    if not root.is_dir():
        raise SessionError(f"Experiment folder not found: {root}.")
    for session, summary, problem in find_sessions(root):
        link = _link_below(root, session)
        if link is not None:
            print(f"note: skipping {session}: {link} is a symbolic link (clean never follows links out of {root})", file=sys.stderr)
            kept += 1
            continue
        try:
            gone = _clean_session(session, summary, problem, now, older_than, dry_run)
        except Exception as err:  # one session's trouble never stops the others
            print(f"warning: could not remove {session}: {_one_line(err)}", file=sys.stderr)
            failed += 1
            continue
        removed += gone
        kept += not gone
    return _cleaned(removed, kept, failed, dry_run)


def _cleaned(removed: int, kept: int, failed: int, dry_run: bool) -> int:
    verb = "Would remove" if dry_run else "Removed"
    print(f"{verb} {removed} session{'s' * (removed != 1)}; kept {kept}.")
    if failed:
        raise SessionError(f"Could not remove {failed} session{'s' * (failed != 1)} (see the warnings above); the others were cleaned.")
    return 0


def _clean_session(session: Path, summary: Dict[str, Any], problem: Optional[str], now: float, older_than: float, dry_run: bool) -> bool:
    """Remove one session if it is finished, idle long enough and not running; True if it was (would be)."""
    if problem or _idle_since(session, summary, now, older_than) is None or lock_is_live(read_lock(session)):
        return False
    if dry_run:
        _say_removing(session, summary, now, older_than, "would remove")
        return True
    lock = SessionLock(session, heartbeat_s=None)
    try:
        lock.acquire(sweep=False)
    except SessionError as err:
        print(f"note: skipping {session}: {_one_line(err)}", file=sys.stderr)
        return False
    try:
        summary = read_summary(session)  # again, under the lock: a resume may have run in between
        if _idle_since(session, summary, now, older_than) is None:
            return False
        _say_removing(session, summary, now, older_than, "removing")
        shutil.rmtree(session)  # does not follow links inside the session
    finally:
        lock.release()
    return True


def _clean_stored(view: SessionView, now: float, older_than: float, dry_run: bool) -> bool:
    """`_clean_session` for a session in object storage: deleted under its lease, every object under its prefix."""
    from lightning_bohb.session.store_lease import StoreLease

    assert view.store is not None
    try:
        summary = read_summary(view.path)
    except SessionError:
        return False
    if _idle_since(view.path, summary, now, older_than) is None or lock_is_live(read_lock(view.path)):
        return False
    if dry_run:
        _say_removing(view.name, summary, now, older_than, "would remove", view.path)
        return True
    lease = StoreLease(view.store, heartbeat_s=None)
    try:
        lease.acquire()
    except SessionError as err:
        print(printable(f"note: skipping {view.name}: {_one_line(str(err))}"), file=sys.stderr)
        return False
    try:
        summary = read_summary(view.refresh())  # again, under the lease: a resume may have run in between
        if _idle_since(view.path, summary, now, older_than) is None:
            return False
        _say_removing(view.name, summary, now, older_than, "removing", view.path)
        view.store.remove()
    finally:
        lease.release()
    return True


def _idle_since(session: Path, summary: Dict[str, Any], now: float, older_than: float) -> Optional[float]:
    """When a finished session was last active, if longer than ``older_than`` ago; else None."""
    if summary.get("status") not in (SessionStatus.COMPLETED, SessionStatus.PAUSED, SessionStatus.FAILED):
        return None
    last = last_activity(session, summary)
    return last if now - last > older_than else None


def _say_removing(
    session: Union[str, Path], summary: Dict[str, Any], now: float, older_than: float, verb: str, files: Optional[Path] = None
) -> None:
    last = _idle_since(files or Path(session), summary, now, older_than) or now
    when = datetime.datetime.fromtimestamp(last).isoformat(timespec="seconds")
    print(printable(f"{verb} {session}  ({summary.get('status')}, last active {when})"))


def _link_below(root: Path, session: Path) -> Optional[Path]:
    """The first symbolic link on the way from ``root`` down to ``session``, if any."""
    current = root
    for part in session.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def last_activity(session: Path, summary: Dict[str, Any]) -> float:
    """The summary's ``updated_at`` as a timestamp, else the summary file's modification time."""
    updated = _timestamp(summary.get("updated_at"))
    return updated if updated is not None else (session / SUMMARY_FILE).stat().st_mtime


def _timestamp(value: Any) -> Optional[float]:
    """An ISO time from a summary (local time, as `now_iso` writes it) as a POSIX timestamp."""
    if not value:
        return None
    try:
        if isinstance(value, datetime.datetime):  # YAML reads an unquoted timestamp as a datetime
            return value.timestamp()
        return datetime.datetime.fromisoformat(str(value)).timestamp()
    except (ValueError, OverflowError, OSError):  # not a time, or one the platform cannot convert
        return None


# -- export-best -------------------------------------------------------------------------------
def export_best(session_dir: str, output: Optional[str]) -> int:
    if not is_uri(session_dir) and not Path(session_dir).expanduser().is_dir():
        raise SessionError(
            f"Session not found: {Path(session_dir).expanduser()} is not a directory. List sessions with: lightning-bohb list"
        )
    with SessionView(session_dir) as view:
        return _export_best(view, output)


def _export_best(view: SessionView, output: Optional[str]) -> int:
    session, name = view.path, view.name
    best = session / BEST_CONFIG_FILE
    if not best.is_file():
        summary = read_summary(session)
        state = state_label(session, summary)
        hint = (
            f" Resume it to finish the search: {_resume_command(summary, name)}"
            if summary.get("status") != SessionStatus.COMPLETED
            else " No trial reported the metric."
        )
        raise SessionError(
            f"Session {name} has no {BEST_CONFIG_FILE} (status: {state}); it is written when the search "
            f"completes.{hint}"
        )
    try:
        text = read_bounded(best, MAX_SUMMARY_BYTES)
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or err
        raise SessionError(f"The best config {view.of(BEST_CONFIG_FILE)} cannot be read ({why}).") from None
    summary = read_summary(session, required=False)
    if summary.get("status", SessionStatus.COMPLETED) != SessionStatus.COMPLETED:
        print(
            printable(f"note: session {name} is {state_label(session, summary)}; this is the best config so far."),
            file=sys.stderr,
        )
    threads = threads_of(text)
    if output in (None, "-"):
        sys.stdout.write(printable(text, keep_newlines=True))  # a terminal shows it: no escape sequences
        sys.stdout.flush()
        if threads is not None:  # the trial's thread count: on stderr, the YAML alone on stdout
            print(f"Rerun the best trial exactly: {rerun_command(threads, BEST_CONFIG_FILE)}", file=sys.stderr)
        return 0
    target = Path(output).expanduser()
    if target.is_dir():
        raise SessionError(f"{target} is a folder; give the file to write, e.g. -o {target / BEST_CONFIG_FILE}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w") as handle:
            handle.write(text)
    except OSError as err:
        raise SessionError(f"Cannot write {target}: {err.strerror or err}. Nothing else was changed.") from None
    print(printable(f"Wrote the best config of {name} to {target}"))
    if threads is not None:
        print(printable(f"Rerun the best trial exactly: {rerun_command(threads, str(target))}"))
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
        table.add_column(Text(printable(header)), no_wrap=not terminal)
    for row in rows:
        table.add_row(*(Text("" if cell is None else printable(cell)) for cell in row))
    if terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ONE_LINE = {code: None for code in _CONTROLS} | {ord("\n"): " ", ord("\t"): " ", ord("\r"): " "}
_LINES = {code: None for code in _CONTROLS if code not in (ord("\n"), ord("\t"))}


def printable(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text without control characters (ESC, BEL, C1 codes, bidi overrides), so that what
    a session file holds cannot drive the terminal; line breaks become spaces unless ``keep_newlines``."""
    return str(value).translate(_LINES if keep_newlines else _ONE_LINE)


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


def _inline(mapping: Dict[str, Any]) -> str:
    if not isinstance(mapping, dict):
        return str(mapping)
    return assignments(mapping)
