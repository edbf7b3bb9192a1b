"""``lightning-bohb status SESSION_DIR``: a session's state, times, trials and best result, from its summary file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict

from lightning_bohb.cli.commands.base import Command, add_session_dir
from lightning_bohb.cli.format import assignments, duration, number, print_table, printable
from lightning_bohb.cli.sessions import STALE, metric_config, state_label, trial_count
from lightning_bohb.session.backend import SessionBackend, view_session
from lightning_bohb.session.owner_record import heartbeat_age, lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.layout import BEST_CONFIG_FILE


class Status(Command):
    name = "status"
    help = "show a session's state, trials and best result"
    description = (
        "Show a session's state, times, pause count, trials and best result so far, read from its "
        "summary file (nothing is unpickled; works while the session runs)."
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser)
        parser.add_argument("--json", action="store_true", help="print the whole summary as JSON")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        return status(args.session_dir, as_json=args.json)


def status(session_dir: str, as_json: bool = False) -> int:
    with view_session(session_dir) as view:
        return _status(view, as_json)


def _status(view: SessionBackend, as_json: bool) -> int:
    session = view.folder
    summary = read_summary(session)
    if as_json:  # JSON escapes every control character in strings (ensure_ascii)
        print(json.dumps(summary, indent=2, default=str))
        return 0
    metric, mode = metric_config(summary)
    state = state_label(session, summary)
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    lines = [
        ("Session", f"{summary.get('session_id', session.name)}  ({view.location})"),
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
        ("Trials", trial_count(summary)),
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
        print(printable(f"Best config: {view.file(BEST_CONFIG_FILE)}"))
    if summary.get("status") in (SessionStatus.PAUSED, SessionStatus.FAILED) or state == STALE:
        print(printable(f"Resume with: {view.resume_command()}"))
    return 0


def _outcomes(summary: Dict[str, Any]) -> Any:
    """A summary row's outcome (``finished``, ``stopped early``, ``paused on request``...: `trial_outcome`)."""
    from lightning_bohb.session.history import BRACKET_STRATEGIES, trial_outcome

    pause, named, most = summary.get("pause"), summary.get("strategy"), summary.get("max_epochs")
    pause = pause if isinstance(pause, dict) else {}
    held = set(pause.get("held_trials") or []) if isinstance(pause.get("held_trials"), list) else set()
    max_epochs = most if isinstance(most, int) else None
    strategy = named if isinstance(named, dict) else {}
    running = summary.get("status") == SessionStatus.RUNNING
    brackets = strategy.get("name") in BRACKET_STRATEGIES

    def outcome(row: Dict[str, Any]) -> str:
        count = row.get("epochs")
        epochs = count if isinstance(count, int) else 0
        return trial_outcome(row.get("status"), epochs, max_epochs, row.get("id") in held, running, brackets)

    return outcome


def _driver_line(session: Path) -> str:
    """Where the session's driver runs and whether it is alive, from its lock record (host, pid, heartbeat)."""
    lock = read_lock(session)
    if not lock or lock.get("invalid") or int(lock.get("pid", -1)) <= 0:
        return "none (no driver holds the session)"
    alive = "alive" if lock_is_live(lock) else "gone"
    return f"{lock.get('host')} pid {lock.get('pid')} ({alive}, heartbeat {heartbeat_age(lock):.0f} s ago)"


def _strategy(strategy: Any) -> str:
    if not isinstance(strategy, dict):
        return "?" if strategy is None else str(strategy)
    params = {k: v for k, v in strategy.items() if k != "name" and v is not None}
    return f"{strategy.get('name', '?')} ({_inline(params)})" if params else str(strategy.get("name", "?"))


def _inline(mapping: Dict[str, Any]) -> str:
    if not isinstance(mapping, dict):
        return str(mapping)
    return assignments(mapping)

