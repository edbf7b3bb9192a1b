"""``lightning-bohb list [EXPERIMENT_DIR]``: every session below an experiment folder (or a bucket prefix), one line each."""

from __future__ import annotations

import argparse

from lightning_bohb.cli.commands.base import Command, add_experiment_dir
from lightning_bohb.cli.format import number, one_line, print_table
from lightning_bohb.cli.sessions import find_sessions, metric_config, state_label, trial_count
from lightning_bohb.utils.layout import SUMMARY_FILE


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
    rows = []
    for session, name, summary, problem in find_sessions(experiment_dir):
        if problem:
            problem = problem.replace(session.file(SUMMARY_FILE), SUMMARY_FILE)  # the row names the session
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
                    state_label(session.folder, summary),
                    summary.get("started_at") or "",
                    summary.get("paused_at") or "",
                    trial_count(summary, short=True),
                    best_text,
                ],
            )
        )
    if not rows:
        print(f"No sessions under {experiment_dir}.")
        return 0
    rows.sort(key=lambda item: item[0])
    print_table(["SESSION", "STATE", "STARTED", "LAST PAUSED", "TRIALS", "BEST"], [row for _, row in rows])
    return 0
