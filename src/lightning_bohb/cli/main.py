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

STUDY_EXAMPLE = """\
study file:
  base_config: config.yaml              # LightningCLI config, relative to the study file (or a mapping)
  search_space:
    lr: {loguniform: [1.0e-4, 1.0e-1]}  # also uniform, quniform, qloguniform, randint, qrandint, lograndint
    hidden_size: {choice: [16, 32, 64]}
    num_layers: 2                       # a constant
  metric: {metric: val_loss, mode: min}
  strategy: {name: bohb, reduction_factor: 3}   # bohb, asha, optuna, hyperopt, random (default)
  optimization: {max_epochs: 9, num_samples: 8, max_concurrent_trials: 2, seed: 0}

The study's folder and the working directory are put on the import path, so class_paths of
modules next to the study file import (in the trials too). experiment_name defaults to the
study file's name without .yaml.
"""


def build_parser() -> argparse.ArgumentParser:
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
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    def command(name: str, help: str, description: str, extra_epilog: str = ""):
        sub = commands.add_parser(
            name, help=help, description=textwrap.fill(description, 100), epilog=extra_epilog + EXIT_CODES, formatter_class=formatter
        )
        return sub

    run = command(
        "run",
        "run a search declared in a YAML study file",
        "Run the search that STUDY declares, as a session that can be paused (Ctrl+C, 'p', SIGUSR1, "
        "'lightning-bohb pause') and resumed exactly.",
        STUDY_EXAMPLE + "\n",
    )
    run.add_argument("study", metavar="STUDY.yaml", help="the study file")
    run.add_argument("--experiment-dir", metavar="D", help="folder that holds experiments (default: the study's "
                     "optimization.experiment_dir, else ./experiments)")
    run.add_argument("--experiment-name", metavar="NAME", help="experiment folder name (default: the study's "
                     "optimization.experiment_name, else the study file's stem)")
    run.add_argument("--session-id", metavar="ID", help="name the session: its folder is <experiment>/session_ID (letters, "
                     "digits, '.', '_', '-'; e.g. \"$SLURM_JOB_ID\"). Default: a new time-stamped id")
    run.add_argument("--resume-if-exists", action="store_true", help="continue the session if it exists, else start it "
                     "(default --session-id: the study file's stem); for batch jobs that are requeued, restarted or run by cron. "
                     "The study's search must be the session's; its num_samples, max_concurrent_trials, cpus/gpus_per_trial "
                     "are taken over")

    pause = command(
        "pause",
        "pause a running session from another shell",
        "Ask the driver of a running session to pause (SIGUSR1: at the next validation boundary; with --now "
        "SIGUSR2: at once, keeping the last checkpoints), wait until it has paused, and print the resume "
        "command. On the driver's host it signals the driver; with RAY_ADDRESS set (any node of the session's Ray "
        "cluster; RAY_AUTH_TOKEN where the cluster uses token authentication) it asks the driver's control actor "
        "through Ray. The session folder must be readable there (a shared filesystem).",
    )
    pause.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder (<experiment_dir>/<name>/session_<id>)")
    pause.add_argument("--now", action="store_true", help="stop at once instead of at the next validation")
    pause.add_argument("--within", metavar="DURATION", type=_positive_duration, default=None,
                       help="the pause must be saved within this long (e.g. 60s, 2m): trials whose epoch end comes later "
                       "checkpoint at their next training step; at the end of it, quit (default: the session's grace_period)")
    pause.add_argument("--timeout", metavar="S", type=_positive_seconds, default=300.0,
                       help="seconds to wait for the session to pause (default: 300)")

    resume = command(
        "resume",
        "resume a paused or interrupted session",
        "Continue a session exactly where it paused; every setting comes from the session state.",
    )
    resume.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    resume.add_argument(
        "--allow-code-changes",
        action="store_true",
        help="resume even though the model, datamodule, search space or strategy code changed since the session started",
    )
    resume.add_argument(
        "--force",
        action="store_true",
        help="take over the session's lock even if it still looks live (a driver on another host whose heartbeat is "
        "fresh); says whose it was. A lock held by a live process on this machine is never broken",
    )
    resume.add_argument(
        "--trust",
        action="store_true",
        help="load the session even though its folder or state files belong to another user or are writable by group "
        "or others (also LIGHTNING_BOHB_TRUST=1). Its state is a pickle: loading it runs the code it names",
    )
    _add_shape_arguments(resume)

    status = command(
        "status",
        "show a session's state, trials and best result",
        "Show a session's state, times, pause count, trials and best result so far, read from its "
        "summary file (nothing is unpickled; works while the session runs).",
    )
    status.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    status.add_argument("--json", action="store_true", help="print the whole summary as JSON")

    listing = command(
        "list",
        "list the sessions in an experiment folder",
        "List every session below EXPERIMENT_DIR (<EXPERIMENT_DIR>/<name>/session_* and "
        "<EXPERIMENT_DIR>/session_*), one line each. A RUNNING session whose driver is gone shows as stale.",
    )
    listing.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", nargs="?", default="./experiments",
                         help="default: ./experiments")

    clean = command(
        "clean",
        "remove old finished sessions",
        "Remove COMPLETED, PAUSED and FAILED sessions whose last activity is older than --older-than. "
        "A session whose driver is running is never removed.",
    )
    clean.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", nargs="?", default="./experiments",
                       help="default: ./experiments")
    clean.add_argument("--older-than", metavar="AGE", type=_duration, required=True,
                       help="e.g. 30d, 12h, 90m, 45s, 2w")
    clean.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")

    export = command(
        "export-best",
        "write the best trial's complete config",
        "Copy the session's best_config.yaml (the complete LightningCLI config of the best trial, written "
        "when the search completes) to OUTPUT; usable as 'fit --config OUTPUT'. Prints the command that reruns the "
        "trial exactly, with its thread count: 'OMP_NUM_THREADS=N python main.py fit --config OUTPUT'.",
    )
    export.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    export.add_argument("-o", "--output", metavar="OUTPUT", help="file to write (default: stdout)")

    results = command(
        "export",
        "write every trial's per-epoch results as CSV",
        "Write one row per trial and validated epoch: the trial id and status, every reported metric, Tune's "
        "fields and the trial's config as config/<name> columns (the columns of Ray's ResultGrid.get_dataframe()). "
        "Reads the session's result files only; works while it runs.",
    )
    results.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    results.add_argument("--csv", metavar="FILE", required=True, help="CSV file to write ('-': stdout)")

    plot = command(
        "plot",
        "write the session's charts as one HTML file",
        "Write a self-contained HTML report (plotly inlined, nothing fetched when opened): trials table, learning "
        "curves, epochs reached per trial with the scheduler's rungs, hyperparameters vs the metric, best config. "
        "Needs: pip install 'lightning-bohb[dashboard]'.",
    )
    plot.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    plot.add_argument("-o", "--output", metavar="FILE", default="report.html", help="HTML file to write (default: report.html)")

    dashboard = command(
        "dashboard",
        "serve a live web dashboard of sessions",
        "Serve a local web page that shows the sessions under EXPERIMENT_DIR (or one SESSION_DIR) live, read from "
        "their files, with buttons to pause, quit and resume sessions and to pause, continue and stop trials. "
        "Every request needs the random token in the printed URL. On a remote machine: "
        "ssh -L PORT:127.0.0.1:PORT HOST, then open the URL here. Needs: pip install 'lightning-bohb[dashboard]'.",
    )
    dashboard.add_argument("path", metavar="EXPERIMENT_DIR|SESSION_DIR", nargs="?", default="./experiments",
                           help="default: ./experiments")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; anything else is "
                           "reachable from other machines and prints a warning)")
    dashboard.add_argument("--port", type=int, default=8750, help="port (default: 8750; 0: any free port)")
    dashboard.add_argument("--read-only", action="store_true", help="no controls: the page only shows")

    trial = command(
        "trial",
        "pause, continue or stop one trial of a session",
        "pause: the trial checkpoints at its next validated epoch end and frees its slot, until 'continue' (also "
        "after a session pause and resume); it then continues exactly from its checkpoint. stop: it ends at its "
        "next validated epoch end (at once if not running). The running driver takes the request within a second; "
        "a paused session applies it when resumed. Not for BOHB (its brackets move trials together).",
    )
    trial.add_argument("action", choices=["pause", "continue", "stop"], help="what to do")
    trial.add_argument("session_dir", metavar="SESSION_DIR", help="the session folder")
    trial.add_argument("trial_id", metavar="TRIAL", help="the trial id (lightning-bohb status SESSION_DIR lists them)")
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


_LOCAL_ONLY = {"export": "session_dir", "plot": "session_dir", "dashboard": "path", "trial": "session_dir"}
"""Commands that read a session's trial files or write into its folder: local (or shared) folders only."""


def _dispatch(args: argparse.Namespace) -> int:
    from lightning_bohb.cli import commands
    from lightning_bohb.utils.uris import is_uri

    where = getattr(args, _LOCAL_ONLY.get(args.command, ""), None)
    if where is not None and is_uri(where):
        raise LightningTuneError(
            f"`lightning-bohb {args.command}` works on a session folder, not on object storage ({where}). `status`, `list`, "
            "`pause`, `resume`, `clean` and `export-best` take the URI; for the others, copy the session to a folder first."
        )
    if args.command == "run":
        return commands.run(
            args.study, args.experiment_dir, args.experiment_name, session_id=args.session_id, resume_if_exists=args.resume_if_exists
        )
    if args.command == "pause":
        if args.now and args.within is not None:
            raise LightningTuneError(
                "--now and --within contradict each other: --now stops at once, --within saves a pause by a deadline. Give one."
            )
        return commands.pause(args.session_dir, now=args.now, timeout=args.timeout, within=args.within)
    if args.command == "resume":
        return commands.resume(
            args.session_dir, allow_code_changes=args.allow_code_changes, force=args.force, trust=args.trust, **_shape_of(args)
        )
    if args.command == "status":
        return commands.status(args.session_dir, as_json=args.json)
    if args.command == "list":
        return commands.list_sessions(args.experiment_dir)
    if args.command == "clean":
        return commands.clean(args.experiment_dir, args.older_than, dry_run=args.dry_run)
    if args.command == "export-best":
        return commands.export_best(args.session_dir, args.output)
    if args.command == "export":
        from lightning_bohb.cli import export

        return export.export_csv(args.session_dir, args.csv)
    if args.command == "plot":
        from lightning_bohb.cli import export

        return export.plot(args.session_dir, args.output)
    if args.command == "dashboard":
        from lightning_bohb.cli import dashboard

        return dashboard.serve(args.path, host=args.host, port=args.port, read_only=args.read_only)
    if args.command == "trial":
        from lightning_bohb.cli import trial

        return trial.trial_command(args.session_dir, args.action, args.trial_id)
    raise AssertionError(f"unhandled command {args.command!r}")


def _error(err: object) -> None:
    """One ``error:`` line (a message may go on over the next lines), control characters removed."""
    from lightning_bohb.cli.commands import printable

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


def _add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """``--num-samples`` and the other settings a resume may change (kept by later resumes)."""
    shape = parser.add_argument_group(
        "new budget or shape (kept by later resumes; the search space, metric and strategy cannot change)"
    )
    shape.add_argument("--num-samples", metavar="N", type=_positive_int,
                       help="trials in all: more continues the search (searcher and scheduler keep every decision made); "
                       "fewer than the trials already created is refused. A COMPLETED session continues too")
    shape.add_argument("--max-concurrent-trials", metavar="K", type=_positive_int, help="trials running at once")
    shape.add_argument("--cpus-per-trial", metavar="C", type=_positive_float, help="CPUs per trial (also for trials that resume)")
    shape.add_argument("--gpus-per-trial", metavar="G", type=_non_negative_float, help="GPUs per trial (also for trials that resume)")


def _shape_of(args: argparse.Namespace) -> dict:
    names = ("num_samples", "max_concurrent_trials", "cpus_per_trial", "gpus_per_trial")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _number(text: str, kind: type, ok, what: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value) or value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; give {what}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def _positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a number > 0")


def _non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def _duration(text: str) -> float:
    from lightning_bohb.core.optimization_config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_duration(text: str) -> float:
    from lightning_bohb.core.optimization_config import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; give a time > 0, e.g. 60s")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}; give seconds > 0")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
