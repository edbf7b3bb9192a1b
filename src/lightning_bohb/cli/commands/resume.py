"""``lightning-bohb resume SESSION_DIR``: continue a paused or interrupted session, optionally with a new
budget or shape (`RESHAPE`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from lightning_bohb.cli.arguments import Number
from lightning_bohb.cli.commands.base import Command, add_session_dir
from lightning_bohb.cli.format import printable
from lightning_bohb.exceptions import EXIT_PAUSED
from lightning_bohb.session.backend import view_session
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.layout import BEST_CONFIG_FILE

RESHAPE: Dict[str, Tuple[str, Number, str]] = {
    "num_samples": (
        "N",
        Number(int, minimum=1),
        "trials in all: more continues the search (searcher and scheduler keep every decision made); "
        "fewer than the trials already created is refused. A COMPLETED session continues too",
    ),
    "max_concurrent_trials": ("K", Number(int, minimum=1), "trials running at once"),
    "cpus_per_trial": ("C", Number(strict=True), "CPUs per trial (also for trials that resume)"),
    "gpus_per_trial": ("G", Number(), "GPUs per trial (also for trials that resume)"),
}
"""The settings a resume may change (kept by later resumes): ``--num-samples N``... (metavar, type, help)."""


class Resume(Command):
    name = "resume"
    help = "resume a paused or interrupted session"
    description = "Continue a session exactly where it paused; every setting comes from the session state."

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser)
        parser.add_argument(
            "--allow-code-changes",
            action="store_true",
            help="resume even though the model, datamodule, search space or strategy code changed since the session started",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="take over the session's lock even if it still looks live (a driver on another host whose heartbeat is "
            "fresh); says whose it was. A lock held by a live process on this machine is never broken",
        )
        parser.add_argument(
            "--trust",
            action="store_true",
            help="load the session even though its folder or state files belong to another user or are writable by group "
            "or others (also LIGHTNING_BOHB_TRUST=1). Its state is a pickle: loading it runs the code it names",
        )
        shape = parser.add_argument_group(
            "new budget or shape (kept by later resumes; the search space, metric and strategy cannot change)"
        )
        for name, (metavar, kind, help) in RESHAPE.items():
            shape.add_argument(f"--{name.replace('_', '-')}", metavar=metavar, type=kind, help=help)

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        shape = {name: getattr(args, name) for name in RESHAPE if getattr(args, name) is not None}
        return resume(args.session_dir, allow_code_changes=args.allow_code_changes, force=args.force, trust=args.trust, **shape)


def resume(session_dir: str, allow_code_changes: bool = False, force: bool = False, trust: bool = False, **shape: Any) -> int:
    """Continue a paused or interrupted session; 0 when it completes, `EXIT_PAUSED` when it pauses again.

    Before Ray starts: the summary is read as data only, the folder's owner and mode are checked
    before anything is unpickled (``trust`` skips that), then the code the trials will run is compared
    with the code recorded at the pause. ``shape``: the `RESHAPE` settings to change
    (`TuneSession.resume`); a COMPLETED session continues only with a larger ``num_samples``.
    """
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    if completed(session_dir, shape.get("num_samples")):
        return 0
    # Its run() puts the session's recorded import path back.
    cli = TuneReflowCLI.resume(session_dir, allow_code_changes=allow_code_changes, force=force, trust=trust, **shape)
    try:
        cli.run(resume=True)
    except SessionPaused:
        return EXIT_PAUSED
    return 0


def completed(session: Union[str, Path], num_samples: Optional[int]) -> bool:
    """Whether ``session`` is COMPLETED and ``num_samples`` (None: unchanged) does not continue it; then it says so."""
    with view_session(session) as view:
        summary = read_summary(view.folder, required=False)
        more = num_samples is not None and num_samples > (summary.get("num_samples") or 0)
        if summary.get("status") != SessionStatus.COMPLETED or more:
            return False
        print(printable(f"Session {session} already completed; nothing to resume."))
        if (view.folder / BEST_CONFIG_FILE).is_file():
            print(printable(f"Best config: {view.file(BEST_CONFIG_FILE)}"))
        return True
