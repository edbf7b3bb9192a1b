"""Every strategy, paused twice and resumed, runs exactly the search it runs without pauses.

Same trials (configs, in order), same per-epoch metrics, same early-stopping decisions (epochs per
trial) and the same best config as the uninterrupted session; scheduler state is restored too. The
model-based strategies pause after their model has begun proposing: Optuna and HyperOpt past their 2
start-up trials, BOHB past its first HyperBand iteration (one searched value, 2 epochs, eta 2: 4 trials
an iteration; its density model at a budget needs 4 results there: it proposes from the 7th trial on).
"""

import json
import os

import pytest

from e2e_support import STRATEGIES, LrSpace, PauseAfter, write_config
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SessionPaused, TuneReflowCLI

pytestmark = pytest.mark.usefixtures("local_ray")
SPACE = LrSpace(lr=(1e-3, 5e-2), hidden_sizes=(16, 32, 64))
BOHB_SPACE = LrSpace(lr=(1e-3, 5e-2))
SEARCHES = {  # name: (max_epochs, num_samples, the results each run sees before it pauses)
    **{name: (4, 5, (3, 4)) for name in ("asha", "random")},
    **{name: (4, 5, (14, 4)) for name in ("optuna", "hyperopt")},  # pauses in the 4th and 5th trial
    "bohb": (2, 10, (11, 4)),  # pauses in the 7th and 9th trial: the second and third iteration
}


def _optimizer(tmp_path, name, max_concurrent=1):
    record_dir = tmp_path / "records"
    record_dir.mkdir(parents=True, exist_ok=True)
    max_epochs, num_samples, _ = SEARCHES[name]
    config = OptimizationConfig(max_epochs=max_epochs, num_samples=num_samples, max_concurrent_trials=max_concurrent, seed=11)
    space = BOHB_SPACE if name == "bohb" else SPACE
    return ConfigDrivenOptimizer(write_config(tmp_path, record_dir, 0.0), space, STRATEGIES[name](seed=5), config)


def _creation_index(result):
    """Trial folders are named ``train_trial_<trial id>_<creation index>_<params>_<date>``."""
    name = os.path.basename(result.path)
    return int(name[len(f"train_trial_{result.metrics['trial_id']}_") :].split("_")[0])


def _trace(tmp_path, results):
    """Per trial in creation order: its config and each epoch's val_loss, from the model's own records."""
    trace = []
    for result in sorted(results, key=_creation_index):
        path = tmp_path / "records" / f"{result.metrics['trial_id']}.jsonl"
        events = [json.loads(line) for line in path.open()]
        epochs = [(e["epoch"], e["val_loss"]) for e in events if e["hook"] == "train_epoch_end"]
        trace.append((result.config, epochs))
    return trace


def _paused_and_resumed(tmp_path, name, pauses, max_concurrent=1):
    cli = PauseAfter(name, experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = pauses[0]
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path, name, max_concurrent))
    for pause_at in pauses[1:]:
        again = PauseAfter.resume(cli.session_dir)
        again.pause_at = pause_at
        with pytest.raises(SessionPaused):
            again.run()
    return cli.session_dir, PauseAfter.resume(cli.session_dir).run()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_paused_twice_equals_uninterrupted(tmp_path, name):
    ref_dir, paused_dir = tmp_path / "ref", tmp_path / "paused"
    reference = TuneReflowCLI(name, experiment_dir=ref_dir, enable_pause=False, verbose=False).run(_optimizer(ref_dir, name))
    session, resumed = _paused_and_resumed(paused_dir, name, pauses=SEARCHES[name][2])

    expected = _trace(ref_dir, reference)
    assert _trace(paused_dir, resumed) == expected
    assert all([epoch for epoch, _ in epochs] == list(range(len(epochs))) for _, epochs in expected)
    best = lambda results: results.get_best_result("val_loss", "min").config  # noqa: E731
    assert best(resumed) == best(reference)
    assert "pause_count: 2" in (session / "session_state.summary.yaml").read_text()


@pytest.mark.parametrize("name", ["bohb", "asha"])
def test_concurrent_bohb_and_asha_resume_without_deadlock_or_retraining(tmp_path, name):
    _, results = _paused_and_resumed(tmp_path, name, pauses=(SEARCHES[name][1] + 1,), max_concurrent=2)
    assert len(results) == SEARCHES[name][1] and not results.errors
    for _, epochs in _trace(tmp_path, results):
        assert [epoch for epoch, _ in epochs] == list(range(len(epochs)))  # no epoch trained twice
