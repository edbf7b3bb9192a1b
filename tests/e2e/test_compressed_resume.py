"""Compressed checkpoints every second epoch and retention: a paused and resumed session trains exactly the
search an uninterrupted one with default checkpoints trains, and keeps no checkpoint of an early-stopped trial."""

import glob
import json
import os

import pytest

from e2e_support import STRATEGIES, LrSpace, PauseAfter, write_config
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SessionPaused, TuneReflowCLI

pytestmark = pytest.mark.usefixtures("local_ray")
SPACE = LrSpace(lr=(1e-3, 5e-2), hidden_sizes=(16, 32, 64))
MAX_EPOCHS = 4


def _optimizer(tmp_path, **checkpoints):
    record_dir = tmp_path / "records"
    record_dir.mkdir(parents=True, exist_ok=True)
    config = OptimizationConfig(max_epochs=MAX_EPOCHS, num_samples=5, max_concurrent_trials=1, seed=11, **checkpoints)
    return ConfigDrivenOptimizer(write_config(tmp_path, record_dir, 0.0), SPACE, STRATEGIES["asha"](seed=5), config)


def _trace(tmp_path, results):
    """Per trial (sorted by config): its config and each epoch's val_loss, from the model's own records."""
    trace = []
    for result in results:
        events = [json.loads(line) for line in (tmp_path / "records" / f"{result.metrics['trial_id']}.jsonl").open()]
        epochs = [(e["epoch"], e["val_loss"]) for e in events if e["hook"] == "train_epoch_end"]
        trace.append((json.dumps(result.config, sort_keys=True), epochs))
    return sorted(trace)


def test_compressed_every_second_epoch_paused_equals_uninterrupted_and_stopped_trials_keep_no_checkpoint(tmp_path):
    ref_dir, paused_dir = tmp_path / "ref", tmp_path / "paused"
    reference = TuneReflowCLI("ref", experiment_dir=ref_dir, enable_pause=False, verbose=False).run(_optimizer(ref_dir))

    cli = PauseAfter("asha", experiment_dir=paused_dir, enable_pause=False, verbose=False)
    cli.pause_at = 3  # trial 1 at epoch 2 (0-based): a pause between two checkpoint epochs
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(paused_dir, checkpoint_compression="zstd", checkpoint_every=2))
    paused_checkpoints = glob.glob(str(cli.session_dir / "tune" / "*" / "checkpoint_*" / "*"))
    assert paused_checkpoints and all(path.endswith("checkpoint.ckpt.zst") for path in paused_checkpoints)
    resumed = PauseAfter.resume(cli.session_dir).run()

    expected = _trace(ref_dir, reference)
    assert _trace(paused_dir, resumed) == expected
    for _, epochs in expected:  # no epoch trained twice
        assert [epoch for epoch, _ in epochs] == list(range(len(epochs)))
    assert any(len(epochs) < MAX_EPOCHS for _, epochs in expected)  # ASHA stopped some trials early

    assert not glob.glob(str(cli.session_dir / "tune" / "*" / ".checkpoint_staging"))  # each staged checkpoint removed

    best = resumed.get_best_result("val_loss", "min")
    assert best.config == reference.get_best_result("val_loss", "min").config
    for result in resumed:
        files = [os.path.basename(p) for p in glob.glob(os.path.join(result.path, "checkpoint_*", "*"))]
        stopped_early = result.metrics["epoch"] + 1 < MAX_EPOCHS
        if stopped_early and result.path != best.path:
            assert files == [], result.path
        else:
            assert files and set(files) == {"checkpoint.ckpt.zst"}, result.path
