"""Resume with a new budget or shape: a larger ``num_samples`` continues the search (the scheduler's
rungs and brackets and every trial's history are kept), a new concurrency retrains nothing.
"""

import glob
import io
import json
import os
import pickle

import cloudpickle
import pytest

from e2e_support import STRATEGIES, LrSpace, PauseAfter, epoch_end_counts, write_config
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SessionPaused, TuneReflowCLI
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.state import TuneSessionState

pytestmark = pytest.mark.usefixtures("local_ray")
SPACE = LrSpace(lr=(1e-3, 5e-2), hidden_sizes=(16, 32, 64))


def _optimizer(tmp_path, name, num_samples, max_concurrent=1, seed=11):
    record_dir = tmp_path / "records"
    record_dir.mkdir(parents=True, exist_ok=True)
    config = OptimizationConfig(max_epochs=4, num_samples=num_samples, max_concurrent_trials=max_concurrent, seed=seed)
    return ConfigDrivenOptimizer(write_config(tmp_path, record_dir, 0.0), SPACE, STRATEGIES[name](seed=5), config)


def _histories(session):
    """``{trial id: [(epoch, val_loss), ...]}`` from each trial's result.json."""
    histories = {}
    for path in glob.glob(str(session / "tune" / "*" / "result.json")):
        rows = [json.loads(line) for line in open(path) if line.strip()]
        if rows:
            histories[rows[0]["trial_id"]] = [(row["epoch"], row["val_loss"]) for row in rows]
    return histories


class _TrialIds(pickle.Unpickler):
    """Reads a saved scheduler state with every trial as its id (`_ray.scheduler_state.dump_scheduler`)."""

    def persistent_load(self, pid):
        kind, trial_id = pid
        return trial_id if kind == "trial" else None


def _scheduler_state(session):
    """The newest scheduler state the session saved (Tune's callback state), trials as ids."""
    (path,) = sorted(glob.glob(str(session / "tune" / "callback-states-*.pkl")))[-1:]
    with open(path, "rb") as file:
        states = cloudpickle.load(file)
    (blob,) = [state["blob"] for state in states.values() if isinstance(state, dict) and "blob" in state]
    return _TrialIds(io.BytesIO(blob)).load()


def _rung_records(name, state):
    """ASHA: ``{(rung milestone, trial): value}``. BOHB: ``{(band, bracket, trial)}`` membership, and
    each bracket's trials in the order they joined."""
    if name == "asha":
        rungs = [rung for bracket in state["_brackets"] for rung in bracket._rungs]
        return {(milestone, trial): value for milestone, recorded in rungs for trial, value in recorded.items()}
    return {
        (band, index): [trial for trial in bracket._all_trials]
        for band, brackets in enumerate(state["_hyperbands"])
        for index, bracket in enumerate(brackets)
        if bracket is not None
    }


def _paused(tmp_path, name, num_samples, pause_at, max_concurrent=1):
    cli = PauseAfter(name, experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = pause_at
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path, name, num_samples, max_concurrent))
    return cli.session_dir


@pytest.mark.parametrize("name", ["asha", "bohb"])
def test_doubled_num_samples_keeps_rungs_and_histories(tmp_path, name):
    session = _paused(tmp_path, name, num_samples=3, pause_at=7)
    before = _histories(session)
    rungs_before = _rung_records(name, _scheduler_state(session))
    assert before and rungs_before

    results = PauseAfter.resume(session, num_samples=6).run()

    assert len(results) == 6 and not results.errors
    after = _histories(session)
    assert len(after) == 6
    for trial_id, history in before.items():  # every old trial keeps its history; it only goes on
        assert after[trial_id][: len(history)] == history
        assert [epoch for epoch, _ in after[trial_id]] == list(range(len(after[trial_id])))
    assert all(n == 1 for n in epoch_end_counts(tmp_path / "records").values())  # no epoch trained twice
    rungs_after = _rung_records(name, _scheduler_state(session))
    if name == "asha":
        assert rungs_before.items() <= rungs_after.items()  # every record made before the pause, unchanged
        assert len(rungs_after) > len(rungs_before)
    else:
        for key, trials in rungs_before.items():  # every bracket keeps its trials, in order; new ones join after
            assert rungs_after[key][: len(trials)] == trials
    state = TuneSessionState.load(session)
    assert state.optimization_config.num_samples == 6  # recorded: a later resume keeps it


def test_doubled_num_samples_on_asha_is_the_search_with_that_budget_from_the_start(tmp_path):
    """ASHA with one trial at a time: the 3 new trials are the ones the larger search draws, judged the same way."""
    reference = TuneReflowCLI("asha", experiment_dir=tmp_path / "ref", enable_pause=False, verbose=False)
    reference.run(_optimizer(tmp_path / "ref", "asha", num_samples=6))
    session = _paused(tmp_path / "paused", "asha", num_samples=3, pause_at=5)
    PauseAfter.resume(session, num_samples=6).run()

    def trace(session_dir):
        rows = {}
        for path in glob.glob(str(session_dir / "tune" / "*" / "result.json")):
            lines = [json.loads(line) for line in open(path) if line.strip()]
            index = int(os.path.basename(os.path.dirname(path)).split("_")[3])  # train_trial_<id>_<index>_...
            rows[index] = (lines[0]["config"], [(r["epoch"], r["val_loss"]) for r in lines])
        return [rows[index] for index in sorted(rows)]

    assert trace(session) == trace(reference.session_dir)


def _trial_cpus(session):
    """``{trial id: (CPUs of its placement group, status)}`` from Tune's newest experiment snapshot."""
    (path,) = sorted(glob.glob(str(session / "tune" / "experiment_state-*.json")))[-1:]
    cpus = {}
    for state_json, _ in json.load(open(path))["trial_data"]:
        state = json.loads(state_json)
        factory = pickle.loads(bytes.fromhex(state["placement_group_factory"]))  # Ray writes it as a hex pickle
        cpus[state["trial_id"]] = (sum(bundle.get("CPU", 0) for bundle in factory.bundles), state["status"])
    return cpus


def test_concurrency_one_to_two_and_new_cpus_retrain_nothing(tmp_path):
    session = _paused(tmp_path, "asha", num_samples=4, pause_at=3)
    before = _histories(session)
    saved = _trial_cpus(session)
    assert {cpus for cpus, _ in saved.values()} == {1.0}
    results = PauseAfter.resume(session, max_concurrent_trials=2, cpus_per_trial=0.5).run()

    assert len(results) == 4 and not results.errors
    counts = epoch_end_counts(tmp_path / "records")
    assert counts and all(n == 1 for n in counts.values()), counts  # each epoch of each trial trained once
    after = _histories(session)
    for trial_id, history in before.items():
        assert after[trial_id][: len(history)] == history
    cpus = {trial_id: cpus for trial_id, (cpus, _) in _trial_cpus(session).items()}
    ended = {trial_id for trial_id, (_, status) in saved.items() if status in ("TERMINATED", "ERROR")}
    assert all(cpus[trial_id] == (1.0 if trial_id in ended else 0.5) for trial_id in cpus), (cpus, saved)  # restored and new
    config = TuneSessionState.load(session).optimization_config
    assert (config.max_concurrent_trials, config.cpus_per_trial) == (2, 0.5)


def test_fewer_samples_than_trials_created_is_refused(tmp_path):
    session = _paused(tmp_path, "random", num_samples=3, pause_at=5)
    created = len(_histories(session))
    with pytest.raises(SessionError, match=f"already created {created} trials.*--num-samples {created} or more"):
        TuneReflowCLI.resume(session, num_samples=created - 1)
    assert TuneSessionState.load(session).optimization_config.num_samples == 3  # nothing recorded


def test_a_completed_session_continues_with_a_larger_budget(tmp_path, capsys):
    from lightning_bohb.cli.commands.resume import resume

    cli = TuneReflowCLI("random", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.run(_optimizer(tmp_path, "random", num_samples=2, max_concurrent=2))
    session = cli.session_dir
    before = _histories(session)
    assert len(before) == 2

    assert resume(str(session), num_samples=2) == 0  # not larger: nothing to do
    assert "already completed; nothing to resume" in capsys.readouterr().out
    assert resume(str(session), num_samples=4) == 0

    after = _histories(session)
    assert len(after) == 4 and all(after[trial_id] == history for trial_id, history in before.items())
    assert all(n == 1 for n in epoch_end_counts(tmp_path / "records").values())
    assert TuneSessionState.load(session).optimization_config.num_samples == 4
