"""``lightning-bohb export-best SESSION_DIR [-o OUTPUT]``: the best trial's complete LightningCLI config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from lightning_bohb.cli.commands.base import Command, add_session_dir
from lightning_bohb.cli.format import printable
from lightning_bohb.cli.sessions import state_label
from lightning_bohb.core.rerun import rerun_command, threads_of
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.backend import SessionBackend, view_session
from lightning_bohb.session.state import MAX_SUMMARY_BYTES, SessionStatus, read_summary
from lightning_bohb.utils.files import read_bounded
from lightning_bohb.utils.layout import BEST_CONFIG_FILE


class ExportBest(Command):
    name = "export-best"
    help = "write the best trial's complete config"
    description = (
        "Copy the session's best_config.yaml (the complete LightningCLI config of the best trial, written "
        "when the search completes) to OUTPUT; usable as 'fit --config OUTPUT'. Prints the command that reruns the "
        "trial exactly, with its thread count: 'OMP_NUM_THREADS=N python main.py fit --config OUTPUT'."
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser)
        parser.add_argument("-o", "--output", metavar="OUTPUT", help="file to write (default: stdout)")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        return export_best(args.session_dir, args.output)


def export_best(session_dir: str, output: Optional[str]) -> int:
    with view_session(session_dir, require=True) as view:
        return _export_best(view, output)


def _export_best(view: SessionBackend, output: Optional[str]) -> int:
    session, name = view.folder, view.location
    best = session / BEST_CONFIG_FILE
    if not best.is_file():
        summary = read_summary(session)
        state = state_label(session, summary)
        hint = (
            f" Resume it to finish the search: {view.resume_command()}"
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
        raise SessionError(f"The best config {view.file(BEST_CONFIG_FILE)} cannot be read ({why}).") from None
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

