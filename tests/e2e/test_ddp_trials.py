"""A trial on 2 DDP ranks (CPU, gloo), paused twice and resumed, or its driver killed -9, runs exactly
the uninterrupted trial: same per-epoch metrics on every rank, bitwise, no epoch trained twice."""

import json
import sys

import pytest
import torch

from ddp_driver import EPOCHS, ddp_optimizer
from e2e_support import REPO, PauseAfter, ScriptRun, kill_9_with_its_ray, session_dir_of, trial_histories, wait_until
from lightning_bohb import SessionPaused, TuneReflowCLI
from lightning_bohb.callbacks.tune_report_callback import readable_checkpoint

DRIVER = REPO / "tests" / "e2e" / "ddp_driver.py"


def _ranks(record_dir):
    """``{rank: [event, ...]}`` from the rank-recording model, in the order the epochs ended."""
    return {path.stem: [json.loads(line) for line in path.read_text().splitlines()] for path in sorted(record_dir.glob("rank*.jsonl"))}


def _epochs(record_dir):
    return {rank: [(e["epoch"], e["val_loss"]) for e in events] for rank, events in _ranks(record_dir).items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, local_ray):
    """The trial never paused: per-rank epochs, the events, and what Tune recorded."""
    tmp_path = tmp_path_factory.mktemp("ddp_reference")
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    cli = TuneReflowCLI("random", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    results = cli.run(ddp_optimizer(record_dir))
    assert not results.errors
    return _epochs(record_dir), _ranks(record_dir), trial_histories(cli.session_dir / "tune")


def test_two_ranks_reserve_one_bundle_each_and_rank_zero_reports(reference):
    epochs, events, histories = reference
    assert sorted(epochs) == ["rank0", "rank1"]
    assert all([epoch for epoch, _ in rows] == list(range(EPOCHS)) for rows in epochs.values())
    assert epochs["rank0"] != epochs["rank1"]  # each rank validated its own half of the data
    for rank_events in events.values():
        assert {e["world_size"] for e in rank_events} == {2}
        assert all(e["bundles"] == [{"CPU": 1.0}, {"CPU": 1.0}] for e in rank_events)  # 2 x the per-rank CPU
    assert {e["pid"] for e in events["rank0"]}.isdisjoint({e["pid"] for e in events["rank1"]})  # two processes
    (history,) = histories.values()
    assert [(epoch, loss) for epoch, loss, _ in history] == epochs["rank0"]  # Tune got rank 0's metrics


def test_two_ranks_paused_twice_resume_exactly(tmp_path, reference, local_ray):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    cli = PauseAfter("random", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = 1
    with pytest.raises(SessionPaused):
        cli.run(ddp_optimizer(record_dir, min_epoch_seconds=1.0))
    again = PauseAfter.resume(cli.session_dir)
    again.pause_at = 1
    with pytest.raises(SessionPaused):
        again.run()
    results = PauseAfter.resume(cli.session_dir).run()

    assert not results.errors
    assert _epochs(record_dir) == reference[0]  # every rank, every epoch once, bitwise the same
    assert trial_histories(cli.session_dir / "tune") == reference[2]
    assert "pause_count: 2" in (cli.session_dir / "session_state.summary.yaml").read_text()
    (folder,) = sorted((cli.session_dir / "tune").glob("*/checkpoint_*"))[-1:]
    with readable_checkpoint(str(folder)) as path:
        ranks = torch.load(path, weights_only=True)["callbacks"]["RNGStateCallback"]["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])  # each rank resumed its own


def test_two_ranks_resume_after_kill_9_of_the_driver(tmp_path, reference):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    run = ScriptRun([sys.executable, str(DRIVER), str(tmp_path / "experiments"), str(record_dir)], cwd=tmp_path)
    checkpoints = lambda: list((tmp_path / "experiments").glob("*/session_*/tune/*/checkpoint_000001"))  # noqa: E731
    wait_until(lambda: checkpoints() or run.proc.poll() is not None, 300, "a second checkpoint")
    assert checkpoints(), run.output[-3000:]
    kill_9_with_its_ray(run)
    before = {rank: len(rows) for rank, rows in _epochs(record_dir).items()}
    session = session_dir_of(tmp_path / "experiments")

    resumed = ScriptRun([sys.executable, str(DRIVER), "--resume-session", str(session)], cwd=tmp_path)
    assert resumed.wait(600) == 0, resumed.output[-3000:]
    for rank, rows in _epochs(record_dir).items():
        latest = sorted(dict(rows).items())  # an epoch the kill cut short may have ended once before
        assert latest == reference[0][rank]
        assert len(rows) - EPOCHS <= 1 and before[rank] >= 2  # at most the epoch in flight trained again
    latest = {config: sorted({row[0]: row for row in rows}.values()) for config, rows in trial_histories(session / "tune").items()}
    assert latest == reference[2]


def test_a_failing_rank_fails_the_trial_with_its_error_at_once(tmp_path, local_ray):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    results = ddp_optimizer(record_dir, fail_rank=1).run(output_dir=tmp_path / "out", verbose=0)
    (error,) = results.errors  # not a hang in rank 0's next collective until the DDP timeout (30 min)
    assert "Rank 1 of the trial failed: injected failure on rank 1" in str(error)
    assert [e["epoch"] for e in _ranks(record_dir)["rank1"]] == [0, 1]
