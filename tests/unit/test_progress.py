"""`BatchProgress`: the lines a session prints without a terminal, on a stand-in session (no Ray)."""

import re
import threading
from types import SimpleNamespace

from lightning_bohb.cli.progress import BatchProgress


def trial(trial_id, status, epochs=0, val_loss=None, config=None):
    result = {"training_iteration": epochs, **({"val_loss": val_loss} if val_loss is not None else {})}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result if epochs else {}, config=config or {"lr": 0.01})


def session(trials, best=None):
    optimizer = SimpleNamespace(metric="val_loss", mode="min", optimization_config=SimpleNamespace(num_samples=4, max_epochs=4))
    coordinator = SimpleNamespace(trials=trials, status_of=lambda t: t.status)
    return SimpleNamespace(optimizer=optimizer, coordinator=coordinator, trial_best=best or {}, pause_command="lightning-bohb pause /s")


def progress(trials, best=None, lines=None, **kwargs):
    return BatchProgress(session(trials, best), write=(lines if lines is not None else []).append, clock=lambda: 1000.0, **kwargs)


def test_one_line_per_trial_event():
    a = trial("a", "RUNNING", config={"lr": 0.01, "hidden_size": 32})
    p = progress([a], best={"a": 0.5})
    assert re.fullmatch(r"\d\d:\d\d:\d\d trial a started: lr=0\.01, hidden_size=32", p.trial_line(a, "PENDING", "RUNNING"))
    done = trial("a", "TERMINATED", 4, 0.5)
    assert p.trial_line(done, "RUNNING", "TERMINATED").endswith("trial a finished after 4 epochs: val_loss=0.5")
    early = trial("a", "TERMINATED", 1, 0.9)
    assert p.trial_line(early, "RUNNING", "TERMINATED").endswith("trial a stopped early after 1 epoch of 4: val_loss=0.9 (best 0.5)")
    held = trial("a", "PAUSED", 2, 0.7)
    assert p.trial_line(held, "RUNNING", "PAUSED", held=True).endswith("trial a paused on request after 2 epochs: val_loss=0.7 (best 0.5)")
    assert "by the scheduler" in p.trial_line(held, "RUNNING", "PAUSED")
    assert p.trial_line(trial("a", "RUNNING", 2), "PAUSED", "RUNNING").endswith("trial a continues from epoch 2")
    assert "failed after 2 epochs" in p.trial_line(trial("a", "ERROR", 2), "RUNNING", "ERROR")
    assert p.trial_line(a, None, "PENDING") is None


def test_summary_line_counts_trials_epochs_best_elapsed_and_says_how_to_pause():
    trials = [trial("a", "RUNNING", 2, 0.6), trial("b", "TERMINATED", 4, 0.4), trial("c", "PAUSED", 1, 0.9)]
    p = progress(trials, best={"a": 0.6, "b": 0.4, "c": 0.9})
    p.started = 1000.0 - 75
    assert p.summary_line().endswith(
        "progress: 1 running, 1/4 done, 1 paused, 7 epochs, best val_loss=0.4 (trial b), elapsed 0:01:15; pause: lightning-bohb pause /s"
    )
    assert "best: none yet" in progress([]).summary_line()


def test_summary_lines_come_on_the_timer_until_stopped():
    lines = []
    written = threading.Event()
    p = BatchProgress(session([]), write=lambda line: (lines.append(line), written.set()), every=0.05)
    p.start()
    assert written.wait(5)
    p.stop()
    count = len(lines)
    assert count >= 1 and all("progress:" in line for line in lines)
    assert not p._thread
