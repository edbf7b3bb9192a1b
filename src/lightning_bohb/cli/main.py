"""``lightning-bohb``: the console script (also ``python -m lightning_bohb``), a thin layer over the API.

Importing this module is cheap: Ray, torch and Lightning load only for `run` and `resume`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import List, Optional

import lightning_bohb
from lightning_bohb.exceptions import EXIT_LOCK_LOST, EXIT_PAUSED, LightningTuneError, SessionLockLost

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "LIGHTNING_BOHB_DEBUG"

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}  success (for run/resume: the search completed)
  {EXIT_ERROR}  error: the message after "error:" says what went wrong and what to do
  {EXIT_USAGE}  bad usage, or an invalid study file (each problem names its YAML path)
  {EXIT_PAUSED}  the session paused; the printed command resumes it
  {EXIT_LOCK_LOST}  this driver lost the session to another one (taken over, or its lock not renewable): it stopped
"""


def build_parser() -> argparse.ArgumentParser:
    from lightning_bohb.cli.commands import COMMANDS

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="lightning-bohb",
        description=textwrap.fill(
            "LightningTune: tune PyTorch Lightning models on Ray Tune, and pause and resume whole sessions. "
            "'status', 'list', 'clean', 'export-best', 'export', 'plot' and 'dashboard' only read files and start nothing "
            "(the dashboard's buttons run the same commands as the console).",
            100,
        ),
        epilog=EXIT_CODES + "\nRun 'lightning-bohb <command> --help' for a command's options.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {lightning_bohb.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            help=command.help,
            description=textwrap.fill(command.description, 100),
            epilog=command.epilog + EXIT_CODES,
            formatter_class=formatter,
        )
        command.add_arguments(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns the exit code (see ``lightning-bohb --help``)."""
    from lightning_bohb.cli.study import StudyError
    from lightning_bohb.exceptions import SessionPaused

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return _dispatch(args)
    except StudyError as err:
        _error(err)
        return EXIT_USAGE
    except SessionLockLost as err:
        _error(err)
        return EXIT_LOCK_LOST
    except LightningTuneError as err:
        _error(err)
        return EXIT_ERROR
    except SessionPaused:
        return EXIT_PAUSED
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lightning-bohb list | head`: the reader is gone, nothing to say
        _quiet_stdout()
        return EXIT_ERROR
    except OSError as err:  # a file a command writes or reads: its name and the system's reason
        where = f" ({err.filename})" if err.filename else ""
        _error(f"{err.strerror or err}{where}")
        return EXIT_ERROR
    except Exception as err:  # a bug: one line all the same, the traceback on request
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        _error(f"unexpected {type(err).__name__}: {err} (a bug in lightning-bohb; {DEBUG_ENV}=1 shows the traceback)")
        return EXIT_ERROR


def _dispatch(args: argparse.Namespace) -> int:
    from lightning_bohb.cli.commands import COMMANDS
    from lightning_bohb.session.backend import require_folder

    command = COMMANDS[args.command]
    if command.local_only:
        require_folder(getattr(args, command.local_only), args.command)
    return command.handle(args)


def _error(err: object) -> None:
    """One ``error:`` line (a message may go on over the next lines), control characters removed."""
    from lightning_bohb.cli.format import printable

    try:
        sys.stdout.flush()
    except OSError:
        _quiet_stdout()
    print(f"error: {printable(str(err), keep_newlines=True)}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail again (a closed pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
