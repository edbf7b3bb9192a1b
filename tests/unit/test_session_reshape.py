"""Named sessions (``--session-id``, ``--resume-if-exists``) and a resume's new budget or shape: what is refused,
and why, before Ray starts (the searches themselves: tests/e2e/test_reshape_resume.py and test_preemption.py)."""

import json

import pytest
import yaml

from lightning_bohb.cli.main import main
from lightning_bohb.cli.study import load_study
from lightning_bohb.core.strategies import OptunaStrategy
from lightning_bohb.exceptions import ConfigError, SessionError
from lightning_bohb.session.lock import SessionLock
from lightning_bohb.session.reshape import reshape_config
from lightning_bohb.session.runner import TuneSession
from lightning_bohb.session.state import TuneSessionState, check_session_id, tune_trial_count

STUDY = {
    "base_config": "config.yaml",
    "search_space": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}},
    "metric": {"metric": "val_loss", "mode": "min"},
    "strategy": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "optimization": {"max_epochs": 3, "num_samples": 4, "max_concurrent_trials": 1, "seed": 0},
}


@pytest.fixture
def study(tmp_path, base_dict):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(base_dict))
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    return path


def _saved_session(study, session_id="nightly", trials=0):
    """A session as ``run`` saves it before Ray starts, with a Tune snapshot of ``trials`` trials."""
    optimizer = load_study(study).build_optimizer(experiment_dir=str(study.parent / "exp"))
    session = TuneSession(session_id=session_id)
    session._create(optimizer)
    session.state.save(session.session_dir)
    tune = session.session_dir / "tune"
    tune.mkdir()
    snapshot = {"trial_data": [["{}", "{}"]] * trials, "runner_data": {}}
    (tune / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(snapshot))
    return session.session_dir


@pytest.mark.parametrize("good", ["nightly", "12345", "job-7.retry_2", "a" * 100])
def test_session_ids_a_user_may_choose(good):
    assert check_session_id(good) == good


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "-x", "a b", "a" * 101, "x\n"])
def test_session_ids_that_could_leave_the_folder_or_hide_are_refused(bad):
    with pytest.raises(ConfigError, match="The value of `session_id`"):
        check_session_id(bad)


def test_run_with_a_bad_session_id_is_one_error_line(study, capsys):
    assert main(["run", str(study), "--session-id", "../elsewhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The value of `session_id` is '../elsewhere'") and "Traceback" not in err
    assert not (study.parent / "experiments").exists()


def test_a_new_session_never_overwrites_one_with_the_same_id(study, capsys):
    session = _saved_session(study, "fixed")
    before = (session / "session_state.json").read_bytes()
    assert main(["run", str(study), "--experiment-dir", str(study.parent / "exp"), "--session-id", "fixed"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Session {session} already exists") and "--resume-if-exists" in err
    assert (session / "session_state.json").read_bytes() == before
    SessionLock(session).acquire()  # released


@pytest.mark.parametrize(
    "section, key, value, what",
    [
        ("search_space", "lr", {"uniform": [0.1, 0.2]}, "search space"),
        ("metric", "mode", "max", "metric"),
        ("strategy", "reduction_factor", 3, "strategy"),
    ],
)
def test_resume_if_exists_refuses_a_study_that_now_declares_another_search(study, capsys, section, key, value, what):
    session = _saved_session(study)
    changed = yaml.safe_load(study.read_text())
    changed[section][key] = value
    study.write_text(yaml.safe_dump(changed))
    assert main(["run", str(study), "--experiment-dir", str(study.parent / "exp"), "--resume-if-exists"]) == 1
    err = capsys.readouterr().err
    assert f"error: The study now declares a different {what} than session {session} runs" in err
    assert "--session-id OTHER_NAME" in err
    SessionLock(session).acquire()  # the refused resume gave its lock back


def test_resume_if_exists_names_the_session_after_the_study(study, capsys):
    study = study.rename(study.parent / "bad name.yaml")
    assert main(["run", str(study), "--resume-if-exists"]) == 1
    assert "Give one: --session-id NAME" in capsys.readouterr().err


def test_a_smaller_budget_than_the_trials_created_is_refused(study):
    session = _saved_session(study, trials=3)
    state = TuneSessionState.load(session)
    assert tune_trial_count(session) == 3
    with pytest.raises(SessionError, match="already created 3 trials.*Resume with --num-samples 3 or more \\(now: 4\\)"):
        reshape_config(state, session, num_samples=2)
    assert reshape_config(state, session, num_samples=3).num_samples == 3  # what exists is enough
    new = reshape_config(state, session, num_samples=8, max_concurrent_trials=2, cpus_per_trial=0.5, gpus_per_trial=1)
    assert (new.num_samples, new.max_concurrent_trials, new.cpus_per_trial, new.gpus_per_trial) == (8, 2, 0.5, 1)
    assert (new.max_epochs, new.seed) == (state.optimization_config.max_epochs, state.optimization_config.seed)
    with pytest.raises(ConfigError, match="The value of `cpus_per_trial` is 0"):
        reshape_config(state, session, cpus_per_trial=0)


def test_a_limit_added_to_an_unlimited_optuna_search_is_refused(study):
    state = TuneSessionState.load(_saved_session(study))
    state.strategy = OptunaStrategy(seed=0)
    state.optimization_config.max_concurrent_trials = None
    with pytest.raises(SessionError, match="without `max_concurrent_trials`.*Resume without --max-concurrent-trials"):
        reshape_config(state, study, max_concurrent_trials=2)
    assert reshape_config(state, study, num_samples=9).max_concurrent_trials is None


def test_resume_with_new_values_records_them_only_when_it_runs(study):
    session = _saved_session(study)
    resumed = TuneSession.resume(session, num_samples=9, max_concurrent_trials=3)
    try:
        assert resumed.state.optimization_config.num_samples == 9
        assert resumed._restored.optimization_config.max_concurrent_trials == 3  # what the run will build
    finally:
        resumed.close()
    assert TuneSessionState.load(session).optimization_config.num_samples == 4  # saved by the run, not before


@pytest.mark.parametrize(
    "flag, value", [("--num-samples", "0"), ("--num-samples", "2.5"), ("--max-concurrent-trials", "0"), ("--cpus-per-trial", "0"),
                    ("--cpus-per-trial", "nan"), ("--gpus-per-trial", "-1")]
)
def test_resume_flags_take_valid_numbers_only(tmp_path, capsys, flag, value):
    assert main(["resume", str(tmp_path), flag, value]) == 2
    assert f"argument {flag}: invalid value '{value}'" in capsys.readouterr().err


def test_resume_if_exists_takes_the_studys_budget_over(study, capsys):
    session = _saved_session(study, trials=3)  # the study's num_samples is 4
    changed = yaml.safe_load(study.read_text())
    changed["optimization"]["num_samples"] = 2
    study.write_text(yaml.safe_dump(changed))
    assert main(["run", str(study), "--experiment-dir", str(study.parent / "exp"), "--resume-if-exists"]) == 1
    err = capsys.readouterr().err
    assert f"session {session} has already created 3 trials" in err
    assert "Set optimization.num_samples to 3 or more in the study (now: 4)." in err
    SessionLock(session).acquire()
