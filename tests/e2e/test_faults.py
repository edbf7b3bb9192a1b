"""Faults: the driver killed with SIGKILL mid-search, and trials that never reach validation."""

import json
import signal
import sys
import threading

import pytest

from e2e_support import (
    REPO,
    LrSpace,
    ScriptRun,
    epoch_end_counts,
    kill_9_with_its_ray,
    session_dir_of,
    start_search,
    trial_histories,
    wait_until,
    write_config,
)
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SessionPaused, TuneReflowCLI

HELD_WRITE_DRIVER = REPO / "tests" / "e2e" / "held_write_driver.py"


def _second_checkpoint_exists(experiment_dir):
    return list(experiment_dir.glob("*/session_*/tune/*/checkpoint_000001"))


def _epoch_starts(record_dir):
    """``{trial_id: [epoch, ...]}``: each ``on_train_epoch_start`` the recording model has run, in order."""
    starts = {}
    for path in record_dir.glob("*.jsonl"):
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        starts[path.stem] = [e["epoch"] for e in events if e["hook"] == "train_epoch_start"]
    return starts


@pytest.mark.parametrize("moment", ["between-checkpoints", "trial-checkpoint", "session-state", "tune-snapshot", "trial-log"])
def test_kill_9_of_the_driver_loses_at_most_the_epoch_in_flight(tmp_path, uninterrupted, moment):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    marker = tmp_path / "held"
    extra = {"hold_checkpoint_marker": str(marker)} if moment == "trial-checkpoint" else {}
    arguments = ["--base-config", str(write_config(tmp_path, record_dir, **extra))]
    if moment in ("session-state", "tune-snapshot", "trial-log"):  # the driver holds that write half-done
        run = start_search(tmp_path, arguments, driver=[str(HELD_WRITE_DRIVER), moment, str(marker)])
    else:
        run = start_search(tmp_path, arguments)
    if moment == "between-checkpoints":
        wait_until(lambda: _second_checkpoint_exists(tmp_path / "experiments"), 180, "a second checkpoint")
    else:
        wait_until(lambda: marker.exists() or run.proc.poll() is not None, 180, f"a {moment} write")
        assert marker.exists(), f"the search ended before a {moment} write was held:\n{run.output[-3000:]}"
    kill_9_with_its_ray(run)
    before_kill = _epoch_starts(record_dir)
    session = session_dir_of(tmp_path / "experiments")
    assert "status: RUNNING" in (session / "session_state.summary.yaml").read_text()  # as the crash left it

    resumed = ScriptRun([sys.executable, str(REPO / "examples" / "optimize.py"), "--resume-session", str(session)], cwd=tmp_path)
    assert resumed.wait() == 0, resumed.output[-3000:]  # the dead driver's lock was taken over
    for trial, starts in _epoch_starts(record_dir).items():
        earlier = before_kill.get(trial, [])
        if earlier and len(starts) > len(earlier):
            # The resumed trial starts at the epoch it had in flight (or had just ended, unregistered), no earlier.
            assert starts[len(earlier)] >= earlier[-1], (trial, earlier, starts[len(earlier):])
    latest = {config: sorted({row[0]: row for row in rows}.values()) for config, rows in trial_histories(session / "tune").items()}
    assert latest == uninterrupted  # and the metrics of the resumed trials are bitwise those of the reference
    repeated = [trial for (trial, _), count in epoch_end_counts(record_dir).items() if count > 1]
    assert len(repeated) == len(set(repeated))  # at most one epoch per trial
    assert not list(session.rglob(".*.tmp"))  # the writes the kill cut short were cleared away


def test_trial_that_never_reaches_validation_is_stopped_after_pause_timeout(tmp_path, local_ray, capsys):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    optimizer = ConfigDrivenOptimizer(
        write_config(tmp_path, record_dir, min_epoch_seconds=600),  # an epoch that outlasts any pause
        LrSpace(),
        RandomStrategy(),
        OptimizationConfig(max_epochs=2, num_samples=2, max_concurrent_trials=2, seed=1, pause_timeout=3),
    )
    cli = TuneReflowCLI("hang", experiment_dir=tmp_path / "experiments", enable_pause=False)
    both_training = lambda: len(list(record_dir.glob("*.jsonl"))) == 2  # noqa: E731
    pauser = threading.Thread(
        target=lambda: (wait_until(both_training, 120, "both trials training"), cli.request_pause()), daemon=True
    )
    pauser.start()
    with pytest.raises(SessionPaused):
        cli.run(optimizer)
    output = capsys.readouterr().out
    trial_ids = [path.stem for path in record_dir.glob("*.jsonl")]
    for trial_id in trial_ids:
        assert f"Trial {trial_id} did not reach validation within pause_timeout" in output
    assert "no checkpoint yet (restarts from scratch)" in output
    assert "status: PAUSED" in (cli.session_dir / "session_state.summary.yaml").read_text()


def test_pause_after_pauses_the_session_by_itself(tmp_path, local_ray):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    optimizer = ConfigDrivenOptimizer(
        write_config(tmp_path, record_dir, min_epoch_seconds=1.0),
        LrSpace(),
        RandomStrategy(),
        OptimizationConfig(max_epochs=30, num_samples=2, max_concurrent_trials=2, seed=1, pause_after="4s"),
    )
    paused = []
    cli = TuneReflowCLI(
        "timed", experiment_dir=tmp_path / "experiments", enable_pause=False, verbose=False,
        on_pause=lambda session_dir, command: paused.append((session_dir, command)),
    )
    with pytest.raises(SessionPaused):
        cli.run(optimizer)
    summary = (cli.session_dir / "session_state.summary.yaml").read_text()
    assert "status: PAUSED" in summary and "status: TERMINATED" not in summary  # paused, not ended
    assert paused == [(cli.session_dir, cli.resume_command)]


class PauseAfterCrash(TuneReflowCLI):
    crash_file = None

    def should_auto_pause(self, metrics):
        return not self.crash_file.exists()  # the first result after the injected crash


def test_session_pauses_around_a_crashed_trial_which_resumes_from_its_checkpoint(tmp_path, local_ray):
    record_dir, crash_file = tmp_path / "records", tmp_path / "crash-once"
    record_dir.mkdir()
    crash_file.touch()
    optimizer = ConfigDrivenOptimizer(
        write_config(tmp_path, record_dir, min_epoch_seconds=0.5, crash_once_file=str(crash_file)),
        LrSpace(),
        RandomStrategy(),
        OptimizationConfig(max_epochs=4, num_samples=2, max_concurrent_trials=2, seed=1, errored_trial_policy="resume"),
    )
    cli = PauseAfterCrash("crash", experiment_dir=tmp_path / "experiments", enable_pause=False, verbose=False)
    cli.crash_file = crash_file
    with pytest.raises(SessionPaused):
        cli.run(optimizer)
    summary = (cli.session_dir / "session_state.summary.yaml").read_text()
    assert "status: PAUSED" in summary and "status: ERROR" in summary

    results = TuneReflowCLI.resume(cli.session_dir).run()
    assert not results.errors  # the crashed trial resumed from its last checkpoint and finished
    ends = {}
    for path in record_dir.glob("*.jsonl"):
        ends[path.stem] = sorted({json.loads(line)["epoch"] for line in path.open() if '"train_epoch_end"' in line})
    assert list(ends.values()) == [[0, 1, 2, 3], [0, 1, 2, 3]]


def test_a_ctrl_c_before_tunes_loop_starts_pauses_the_session_never_completes_it(tmp_path, local_ray, monkeypatch):
    """Tune installs its own SIGINT handler before the session's come back; a Ctrl+C (or
    ``lightning-bohb pause``) landing in that window must pause the session, not mark it COMPLETED."""
    import os

    import ray.tune.tune as tune_module

    catch_signals = tune_module._setup_signal_catching

    def ctrl_c_while_tune_handles_it():
        event = catch_signals()
        os.kill(os.getpid(), signal.SIGINT)  # delivered now, to Tune's handler
        return event

    monkeypatch.setattr(tune_module, "_setup_signal_catching", ctrl_c_while_tune_handles_it)
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    optimizer = ConfigDrivenOptimizer(
        write_config(tmp_path, record_dir, min_epoch_seconds=0.0),
        LrSpace(),
        RandomStrategy(),
        OptimizationConfig(max_epochs=2, num_samples=2, max_concurrent_trials=2, seed=1),
    )
    cli = TuneReflowCLI("early", experiment_dir=tmp_path / "experiments", enable_pause=False, verbose=False)
    with pytest.raises(SessionPaused):
        cli.run(optimizer)
    assert "status: PAUSED" in (cli.session_dir / "session_state.summary.yaml").read_text()
    assert not (cli.session_dir / "best_config.yaml").exists()

    monkeypatch.undo()
    results = TuneReflowCLI.resume(cli.session_dir).run()
    assert len(results) == 2 and not results.errors
    assert all(list(result.metrics_dataframe["epoch"]) == [0, 1] for result in results)
    assert "status: COMPLETED" in (cli.session_dir / "session_state.summary.yaml").read_text()
