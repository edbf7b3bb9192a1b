"""`StoppedTrialCheckpoints`: which trials' checkpoint folders are deleted, and when (trials as Tune shows them)."""

from types import SimpleNamespace

from ray.tune.experiment import Trial

from lightning_bohb.core.retention import StoppedTrialCheckpoints


def _trial(tmp_path, scores, trial_id, epochs, best_loss, running=False):
    folder = tmp_path / trial_id
    for index in range(2):
        (folder / f"checkpoint_{index:06d}").mkdir(parents=True)
        (folder / f"checkpoint_{index:06d}" / "checkpoint.ckpt").write_bytes(b"w" * 100)
    (folder / "result.json").write_text("{}\n")
    scores[trial_id] = best_loss  # as the session's trial_best has it
    return SimpleNamespace(
        trial_id=trial_id, path=str(folder), status=Trial.RUNNING, last_result={"epoch": epochs - 1},
        temporary_state=SimpleNamespace(ray_actor=object() if running else None),
    )


def _checkpoints(trial):
    from pathlib import Path

    return sorted(p.name for p in Path(trial.path).glob("checkpoint_*"))


def test_stopped_trials_lose_their_checkpoints_but_the_best_and_the_finished_keep_them(tmp_path):
    scores = {}
    retention = StoppedTrialCheckpoints("min", max_epochs=4, scores=scores)
    finished = _trial(tmp_path, scores, "finished", epochs=4, best_loss=0.5)
    stopped = _trial(tmp_path, scores, "stopped", epochs=1, best_loss=0.9)
    best_stopped = _trial(tmp_path, scores, "best", epochs=2, best_loss=0.1)
    trials = [finished, stopped, best_stopped]
    for trial in trials:
        retention.on_trial_complete(0, trials, trial)
    retention.on_step_end(0, trials)
    assert _checkpoints(stopped) == []
    assert _checkpoints(finished) == _checkpoints(best_stopped) == ["checkpoint_000000", "checkpoint_000001"]
    assert retention.freed_bytes == 200 and (tmp_path / "stopped" / "result.json").exists()

    better = _trial(tmp_path, scores, "better", epochs=4, best_loss=0.05, running=True)
    retention.on_step_end(1, [*trials, better])
    assert _checkpoints(best_stopped) == []  # no longer the best


def test_nothing_is_deleted_while_the_session_pauses_or_before_the_trial_process_ends(tmp_path):
    pausing = [True]
    scores = {}
    retention = StoppedTrialCheckpoints("min", max_epochs=4, scores=scores, ending=lambda: pausing[0])
    paused = _trial(tmp_path, scores, "paused", epochs=2, best_loss=0.9)  # Tune's clean-up completes it at a pause
    uploading = _trial(tmp_path, scores, "uploading", epochs=1, best_loss=0.8, running=True)
    best = _trial(tmp_path, scores, "best", epochs=4, best_loss=0.1)
    trials = [paused, uploading, best]
    retention.on_trial_complete(0, trials, paused)
    retention.on_step_end(0, trials)
    pausing[0] = False
    retention.on_trial_complete(1, trials, uploading)
    retention.on_step_end(1, trials)
    assert _checkpoints(paused) and _checkpoints(uploading)  # its process may still upload a checkpoint
    uploading.temporary_state.ray_actor = None
    retention.on_step_end(2, trials)
    assert _checkpoints(uploading) == [] and _checkpoints(paused)


def test_a_trial_with_only_non_finite_values_is_never_the_best_whose_checkpoints_stay(tmp_path):
    scores = {}
    retention = StoppedTrialCheckpoints("min", max_epochs=4, scores=scores)
    nan = _trial(tmp_path, scores, "nan", epochs=1, best_loss=float("nan"))
    minus_inf = _trial(tmp_path, scores, "minus_inf", epochs=1, best_loss=float("-inf"))
    best = _trial(tmp_path, scores, "best", epochs=2, best_loss=0.7)
    trials = [nan, minus_inf, best]
    for trial in trials:
        retention.on_trial_complete(0, trials, trial)
    retention.on_step_end(0, trials)
    assert _checkpoints(nan) == _checkpoints(minus_inf) == [] and _checkpoints(best)
