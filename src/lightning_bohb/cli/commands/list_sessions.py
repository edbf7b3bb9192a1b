"""``lightning-bohb list [EXPERIMENT_DIR]``: every session below an experiment folder (or a bucket prefix), one line each."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from lightning_bohb.cli.commands.base import Command, add_experiment_dir
from lightning_bohb.cli.format import number, one_line, print_table
from lightning_bohb.cli.sessions import find_sessions, metric_config, state_label, trial_count
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.state import read_summary
from lightning_bohb.session.store import SessionView, find_store_sessions
from lightning_bohb.utils.layout import SUMMARY_FILE
from lightning_bohb.utils.uris import is_uri, split_query


class ListSessions(Command):
    name = "list"
    help = "list the sessions in an experiment folder"
    description = (
        "List every session below EXPERIMENT_DIR (<EXPERIMENT_DIR>/<name>/session_* and "
        "<EXPERIMENT_DIR>/session_*), one line each. A RUNNING session whose driver is gone shows as stale."
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_experiment_dir(parser)

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        return list_sessions(args.experiment_dir)


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
            rows.append((("", name), [name, "UNREADABLE", "", "", "", one_line(problem)]))
            continue
        metric, _ = metric_config(summary)
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
                    trial_count(summary, short=True),
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

