"""``lightning-bohb run STUDY.yaml``: run the search a study file declares, as a session."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from lightning_bohb.cli.commands.base import Command
from lightning_bohb.cli.commands.resume import RESHAPE, completed
from lightning_bohb.cli.format import printable
from lightning_bohb.exceptions import EXIT_PAUSED, SessionError
from lightning_bohb.session.backend import session_at
from lightning_bohb.utils.imports import extend_import_path
from lightning_bohb.utils.layout import DEFAULT_EXPERIMENT_DIR

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


class Run(Command):
    name = "run"
    help = "run a search declared in a YAML study file"
    description = (
        "Run the search that STUDY declares, as a session that can be paused (Ctrl+C, 'p', SIGUSR1, "
        "'lightning-bohb pause') and resumed exactly."
    )
    epilog = STUDY_EXAMPLE + "\n"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY.yaml", help="the study file")
        parser.add_argument("--experiment-dir", metavar="D", help="folder that holds experiments (default: the study's "
                            f"optimization.experiment_dir, else {DEFAULT_EXPERIMENT_DIR})")
        parser.add_argument("--experiment-name", metavar="NAME", help="experiment folder name (default: the study's "
                            "optimization.experiment_name, else the study file's stem)")
        parser.add_argument("--session-id", metavar="ID", help="name the session: its folder is <experiment>/session_ID (letters, "
                            "digits, '.', '_', '-'; e.g. \"$SLURM_JOB_ID\"). Default: a new time-stamped id")
        parser.add_argument("--resume-if-exists", action="store_true", help="continue the session if it exists, else start it "
                            "(default --session-id: the study file's stem); for batch jobs that are requeued, restarted or run by cron. "
                            "The study's search must be the session's; its num_samples, max_concurrent_trials, cpus/gpus_per_trial "
                            "are taken over")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        return run(
            args.study, args.experiment_dir, args.experiment_name, session_id=args.session_id, resume_if_exists=args.resume_if_exists
        )


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
    from lightning_bohb.session.state import check_session_id

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
        assert session_id is not None
        config = optimizer.optimization_config
        with session_at(config.experiment_dir, config.experiment_name, session_id) as session:
            if session.is_session():
                return continue_study(session.location, optimizer)
        print(printable(f"No session {session.location} yet; starting it."), flush=True)
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


_SEARCH = ("search space", "metric", "strategy", "base config")


def continue_study(session: Union[str, Path], optimizer: Any) -> int:
    """Continue ``session`` for ``lightning-bohb run STUDY --resume-if-exists`` (see `run`).

    Refused when the study now declares another search (search space, metric, strategy or base
    config) than the session runs; new values of the `RESHAPE` settings in the study are taken over as
    ``resume --num-samples ...`` would.
    A COMPLETED session is left as it is unless the study's ``num_samples`` is larger.
    """
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.exceptions import SessionPaused

    config = optimizer.optimization_config
    if completed(session, config.num_samples):
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
        shape = {name: getattr(config, name) for name in RESHAPE if getattr(config, name) != getattr(recorded, name)}
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

