"""`BatchProgress`: the lines a session prints without a terminal, on a stand-in session (no Ray)."""

import re
import threading
from types import SimpleNamespace

from lightning_bohb.cli.progress import BatchProgress


def trial(trial_id, status, epochs=0, val_loss=None, config=None, seconds=None):
    result = {"training_iteration": epochs, **({"val_loss": val_loss} if val_loss is not None else {})}
    if seconds is not None:
        result["time_total_s"] = seconds
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result if epochs else {}, config=config or {"lr": 0.01})


def session(trials, best=None, strategy="asha", held=()):
    config = SimpleNamespace(num_samples=4, max_epochs=4, max_concurrent_trials=None)
    optimizer = SimpleNamespace(metric="val_loss", mode="min", optimization_config=config, strategy=SimpleNamespace(name=strategy))
    coordinator = SimpleNamespace(trials=trials, status_of=lambda t: t.status, holds=SimpleNamespace(held=set(held)))
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


def test_summary_line_tells_pauses_apart_and_gives_an_upper_bound_of_the_time_left():
    trials = [trial("a", "RUNNING", 2, 0.6, seconds=20.0), trial("b", "PAUSED", 1, 0.9, seconds=10.0),
              trial("c", "PAUSED", 1, 0.8, seconds=10.0)]
    p = progress(trials, best={"a": 0.6, "b": 0.9, "c": 0.8})
    p.session = session(trials, best={"a": 0.6, "b": 0.9, "c": 0.8}, strategy="bohb", held={"b"})
    p.started = 1000.0 - 40
    line = p.summary_line()
    assert "1 running, 0/4 done, 1 paused on request, 1 paused by the scheduler (waiting for their bracket), 4 epochs" in line
    # 2 + 3 + 3 epochs left for the trials started, 4 for the one not started; 10 s an epoch; 1 trial at a time
    assert line.endswith("elapsed 0:00:40, at most 0:02:00 left; pause: lightning-bohb pause /s")
    assert "left" not in progress([trial("a", "RUNNING")]).summary_line()  # no epoch yet: no estimate


def test_a_non_finite_value_is_never_the_best():
    trials = [trial("a", "RUNNING", 1, float("nan")), trial("b", "RUNNING", 1, 0.7)]
    assert "best val_loss=0.7 (trial b)" in progress(trials, best={"a": float("nan"), "b": 0.7}).summary_line()
    assert "best: none yet" in progress(trials, best={"a": float("inf")}).summary_line()


def test_the_terminal_table_has_the_progress_header_outcomes_and_the_best_trial_marked():
    import time

    from rich.console import Console

    from lightning_bohb.cli.live_table import LiveTrialTable

    trials = [trial("a", "TERMINATED", 4, 0.4, seconds=40.0), trial("b", "TERMINATED", 1, 0.9, seconds=10.0),
              trial("c", "PAUSED", 2, 0.7, seconds=20.0), trial("d", "RUNNING", 1, float("nan"), seconds=10.0, config={"lr": 1.099e-4})]
    best = {"a": 0.4, "b": 0.9, "c": 0.7, "d": float("nan")}
    table = LiveTrialTable(session(trials, best, strategy="bohb", held={"c"}), lambda: "p: pause", started=time.time() - 65)
    console = Console(width=250, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    header = text.splitlines()[0]
    assert "1 running, 2/4 done, 1 paused on request, 8 epochs, best val_loss=0.4 (trial a), elapsed 0:01:0" in header
    assert header.endswith("at most 0:00:50 left")  # c: 2 epochs left, d: 3; 10 s an epoch; 1 trial at a time
    rows = {line.split()[0] if not line.startswith("★") else line.split()[1]: line for line in text.splitlines()[1:]}
    assert rows["a"].startswith("★ a") and "finished" in rows["a"] and "0:00:40" in rows["a"]
    assert "stopped early" in rows["b"] and "paused on request" in rows["c"] and "lr=1.099e-4" in rows["d"]
    assert text.rstrip().endswith("p: pause")


def test_the_final_summary_gives_the_best_value_its_config_and_the_time():
    from lightning_bohb.cli.tune_reflow import final_summary

    trials = [trial("a", "TERMINATED", 4, 0.4, config={"lr": 1.099e-4, "hidden_size": 32}), trial("b", "TERMINATED", 1, 0.9)]
    done = session(trials, best={"a": 0.4, "b": 0.9})
    done.location_of = lambda name: f"/s/{name}"
    assert final_summary(done, 3725.0) == [
        "   Trials: 2/4 done",
        "   Best val_loss: 0.4 (trial a)",
        "   Its values: lr=1.099e-4, hidden_size=32",
        "   Time: 1:02:05 (5 epochs trained)",
        "   Best config: /s/best_config.yaml",
    ]
