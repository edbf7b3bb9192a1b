"""A pause with a deadline shorter than an epoch: trials checkpoint at a training step (issue 13).

Real local Ray, real Lightning, a real SIGTERM to the driver: two trials train side by side with slow
steps (an epoch takes longer than the grace period). Both checkpoint at their next step, the session
pauses (no quit), and the resumed session trains every remaining step once, with the same batches and
losses, bitwise, as the uninterrupted session. Tune saw no partial-epoch result: every trial's result
log has one row per epoch and ``training_iteration`` stays the epoch count. A loader that cannot be
resumed mid-epoch says so and pauses at the epoch end.
"""

import json
import os
import signal
import threading
import time

import pytest
import yaml

from e2e_support import LrSpace, wait_until
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SessionPaused, TuneReflowCLI
from lightning_bohb.pause.state import StopReason

pytestmark = pytest.mark.usefixtures("local_ray")
STEP_SECONDS = 0.2
STEPS_PER_EPOCH = 20  # 80 samples, batches of 4: an epoch takes >= 4 s, the grace period is 2 s


def _optimizer(directory, record_dir, num_workers=0, sampler="shuffle", **options):
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "seed_everything": 7,
        "trainer": {"accelerator": "cpu", "devices": 1, "deterministic": True, "num_sanity_val_steps": 0},
        "model": {
            "class_path": "e2e_models.StepLossRegressor",
            "init_args": {
                "encoder": {"class_path": "e2e_models.MLPEncoder", "init_args": {"hidden": 8}},
                "record_dir": str(record_dir), "step_seconds": STEP_SECONDS,
            },
        },
        "data": {"class_path": "e2e_models.StepData", "init_args": {"num_workers": num_workers, "sampler": sampler}},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = dict(max_epochs=3, num_samples=2, max_concurrent_trials=2, seed=1, **options)
    return ConfigDrivenOptimizer(path, LrSpace(), RandomStrategy(seed=3), OptimizationConfig(**settings))


def _records(record_dir):
    """``{trial id: [event, ...]}`` in the order each trial wrote them."""
    found = {}
    for name in os.listdir(record_dir):
        with open(record_dir / name) as handle:
            found[name[: -len(".jsonl")]] = [json.loads(line) for line in handle if line.strip()]
    return found


def _steps_by_config(session, record_dir):
    """``{lr: [(epoch, batch, indices, loss), ...]}`` per trial, every step in the order it was trained."""
    configs = {rows[0]["trial_id"]: rows[0]["config"]["lr"] for rows in _result_rows(session).values()}
    return {
        configs[trial_id]: [(e["epoch"], e["batch"], e["index"], e["loss"]) for e in events if e["hook"] == "step"]
        for trial_id, events in _records(record_dir).items()
    }


def _result_rows(session):
    rows = {}
    for path in (session / "tune").glob("*/result.json"):
        rows[path.parent.name] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _signal_when_both_early_in_an_epoch(record_dir, signum, sent):
    """Send ``signum`` to this driver (or call it) once both trials are a few steps into epoch 1."""

    def early():
        records = _records(record_dir) if record_dir.exists() else {}
        steps = [[e for e in events if e["hook"] == "step"] for events in records.values()]
        return len(steps) == 2 and all(s and s[-1]["epoch"] == 1 and 2 <= s[-1]["batch"] <= 10 for s in steps)

    def send():
        wait_until(early, 240, "both trials early in epoch 1", interval=0.02)
        sent.append(time.monotonic())
        signum() if callable(signum) else os.kill(os.getpid(), signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sigterm_shorter_than_an_epoch_checkpoints_at_a_step_and_resumes_bitwise(tmp_path, num_workers):
    reference_records = tmp_path / "ref_records"
    reference_records.mkdir()
    reference = TuneReflowCLI("ref", experiment_dir=tmp_path / "ref", enable_pause=False, verbose=False)
    reference.run(_optimizer(tmp_path / "ref", reference_records, num_workers))
    expected = _steps_by_config(reference.session_dir, reference_records)
    assert len(expected) == 2 and all(len(steps) == 3 * STEPS_PER_EPOCH for steps in expected.values())

    record_dir = tmp_path / "records"
    record_dir.mkdir()
    cli = TuneReflowCLI("paused", experiment_dir=tmp_path / "paused", enable_pause=False, verbose=False, grace_period=2.0)
    sent = []
    sender = _signal_when_both_early_in_an_epoch(record_dir, signal.SIGTERM, sent)
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path / "paused", record_dir, num_workers))
    paused_after = time.monotonic() - sent[0]
    sender.join()
    coordinator = cli.session.coordinator
    assert coordinator.stop_reason == StopReason.PAUSED and not coordinator.timed_out, "quit at the grace period"
    assert paused_after < 2.0 + 15  # saved within the grace period (plus Tune's own stop)
    at_pause = _records(record_dir)
    for events in at_pause.values():  # each trial stopped in the middle of epoch 1
        last = [e for e in events if e["hook"] == "step"][-1]
        assert last["epoch"] == 1 and last["batch"] < STEPS_PER_EPOCH - 1, last
        assert [e["epoch"] for e in events if e["hook"] == "train_epoch_end"] == [0]

    TuneReflowCLI.resume(cli.session_dir).run()

    resumed = _steps_by_config(cli.session_dir, record_dir)
    assert resumed == expected  # every step once, same batches, same losses, bitwise
    for name, rows in _result_rows(cli.session_dir).items():  # no partial-epoch row; iterations count epochs
        assert [(r["epoch"], r["training_iteration"]) for r in rows] == [(0, 1), (1, 2), (2, 3)], name
        assert not any("lightning_bohb_step_checkpoint" in r for r in rows)


def test_a_loader_that_cannot_resume_mid_epoch_says_so_and_pauses_at_the_epoch_end(tmp_path):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    cli = TuneReflowCLI("weighted", experiment_dir=tmp_path / "weighted", enable_pause=False, verbose=False)
    # What `pause_after`/`pause_at` do when their time comes: a pause due now, with no quit after it.
    sender = _signal_when_both_early_in_an_epoch(record_dir, lambda: cli.session.pause.request_pause(deadline=time.time()), [])
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path / "weighted", record_dir, sampler="weighted"))
    sender.join()
    coordinator = cli.session.coordinator
    assert coordinator.stop_reason == StopReason.PAUSED and not coordinator.timed_out
    assert len(coordinator.epoch_end_only) == 2
    for why in coordinator.epoch_end_only.values():
        assert why.startswith("cannot checkpoint in the middle of an epoch: its training loader cannot resume there "
                              "exactly (its sampler is a WeightedRandomSampler, which LightningTune cannot replay)")
    for events in _records(record_dir).values():  # held at an epoch end: its last step ended an epoch
        last_step = [e for e in events if e["hook"] == "step"][-1]
        assert last_step["batch"] == STEPS_PER_EPOCH - 1 and events[-1]["hook"] == "train_epoch_end"
