"""`lightning_bohb.core.best_trial`: the one rule for the best trial, and every place that shows or uses it
agreeing on one search whose trials reported NaN and infinities (a real session's files, no Ray)."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from ray import tune
from ray.tune import Result

from lightning_bohb.cli import dashboard
from lightning_bohb.cli.export import best_line, report_data
from lightning_bohb.cli.main import main
from lightning_bohb.cli.progress import BatchProgress, search_progress
from lightning_bohb.core.best_trial import best_of, best_value, better, is_score
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
from lightning_bohb.core.retention import StoppedTrialCheckpoints
from lightning_bohb.core.search_space import SearchSpace
from lightning_bohb.session.runner import TuneSession

NAN, INF = float("nan"), float("inf")


def test_non_finite_values_never_win():
    assert is_score(0) and is_score(-2.5) and not is_score(True) and not is_score("0.1") and not is_score(None)
    for mode in ("min", "max"):
        assert not better(NAN, None, mode) and not better(INF, None, mode) and not better(-INF, None, mode)
        assert better(0.5, NAN, mode) and better(0.5, INF, mode) and better(0.5, -INF, mode) and better(0.5, None, mode)
        assert best_value([NAN, INF, -INF, None, "x"], mode) is None
        assert best_of([("a", NAN), ("b", INF), ("c", -INF), ("d", None)], mode) is None
        assert best_of([], mode) is None
    assert best_value([0.4, NAN, -INF, 0.2, INF, 0.3], "min") == 0.2
    assert best_value([0.4, NAN, INF, 0.7, -INF, 0.3], "max") == 0.7
    assert best_of([("a", NAN), ("b", 0.7), ("c", -INF), ("d", 0.9)], "min") == ("b", 0.7)
    assert best_of([("a", NAN), ("b", 0.7), ("c", INF), ("d", 0.9)], "max") == ("d", 0.9)


def test_of_equal_values_the_first_in_the_searchs_order_wins():
    assert best_of([("b", 0.5), ("a", 0.5), ("c", 0.6)], "min") == ("b", 0.5)
    assert best_of([("b", 0.5), ("a", 0.6), ("c", 0.6)], "max") == ("a", 0.6)
    assert not better(0.5, 0.5, "min") and not better(0.5, 0.5, "max")


# -- one search, every reader ---------------------------------------------------------------------------------------
# Tune's trial ids from a searcher are random: the order they were created in is not their sorted order.
# Each old rule named another trial: Ray's `get_best_result` (each trial's last value; best_config.yaml) c2;
# checkpoint retention (Ray's per-trial min, unfiltered) d3 for its -inf; the progress lines (trials in the
# order their first value came) and the charts (sorted ids) a7, breaking its tie with f1 at 0.2. The rule: f1, 0.2.
REPORTS = {
    "f1": [0.9, NAN, 0.2, 0.5],  # best 0.2; created first
    "d3": [-INF, 0.8],  # best 0.8: -inf never wins
    "a7": [0.4, 0.2, INF],  # best 0.2 too, created after f1
    "e0": [NAN, INF],  # no value at all
    "c2": [0.3, 0.25],  # the best last value
}
CREATED = list(REPORTS)
LR = {trial_id: 0.001 * (index + 1) for index, trial_id in enumerate(CREATED)}


class Space(SearchSpace):
    def get_search_space(self):
        return {"lr": tune.loguniform(1e-4, 1e-1)}

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def _trial(session_dir: Path, trial_id: str):
    folder = session_dir / "tune" / f"train_trial_{trial_id}_lr={LR[trial_id]}"
    folder.mkdir(parents=True)
    config = {"lr": LR[trial_id]}
    rows = [
        {
            "val_loss": value,
            "epoch": epoch,
            "training_iteration": epoch + 1,
            "trial_id": trial_id,
            "time_total_s": epoch + 1.0,
            "config": config,
        }
        for epoch, value in enumerate(REPORTS[trial_id])
    ]
    (folder / "result.json").write_text("".join(json.dumps(row) + "\n" for row in rows))  # NaN, Infinity as Tune writes them
    return SimpleNamespace(
        trial_id=trial_id,
        status="TERMINATED",
        config=config,
        last_result=rows[-1],
        rows=rows,
        path=str(folder),
        temporary_state=SimpleNamespace(ray_actor=None),
    )


def _result(trial):
    """The trial's ``Result`` as Ray's ``ResultGrid`` builds it: its metrics from its ``result.json``."""
    rows = [json.loads(line) for line in (Path(trial.path) / "result.json").read_text().splitlines()]
    return Result(
        metrics=trial.last_result, checkpoint=None, error=None, path=trial.path, metrics_dataframe=pd.json_normalize(rows, sep="/")
    )


@pytest.fixture
def search(tmp_path, base_dict):
    """A session whose five trials reported `REPORTS`, each result through the driver's own handler."""
    optimizer = ConfigDrivenOptimizer(base_dict, Space(), optimization_config=OptimizationConfig(max_epochs=4, num_samples=5))
    session = TuneSession("exp", experiment_dir=tmp_path, session_id="20260101_000000_nanbest")
    session.optimizer = session._create(optimizer)
    trials = [_trial(session.session_dir, trial_id) for trial_id in CREATED]
    session.coordinator = SimpleNamespace(trials=trials, status_of=lambda trial: trial.status, describe=dict, holds=None)
    for epoch in range(max(len(values) for values in REPORTS.values())):  # interleaved, as a search reports them
        for trial in reversed(trials):
            if epoch < len(trial.rows):
                session._on_result(trial, trial.rows[epoch])
    session._write_summary()
    return session, optimizer, trials


def test_status_dashboard_export_progress_retention_and_best_config_name_one_best(search, tmp_path, capsys):
    session, optimizer, trials = search
    folder = session.session_dir
    expected = ("f1", 0.2)

    assert main(["status", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["best"]["trial"], summary["best"]["val_loss"]) == expected
    assert {row["id"]: row["best"] for row in summary["trials"]} == {"f1": 0.2, "d3": 0.8, "a7": 0.2, "e0": None, "c2": 0.25}
    assert main(["status", str(folder)]) == 0
    assert "Best so far: trial f1  val_loss=0.2 " in capsys.readouterr().out

    row = dashboard.session_row("k", folder, summary, None)
    assert (row["best_trial"], row["best"]) == expected
    charts = report_data(folder, summary)
    assert (charts["best"]["trial"], charts["best"]["value"]) == expected
    assert {t["id"]: t["best"] for t in charts["trials"]} == {"f1": 0.2, "d3": 0.8, "a7": 0.2, "e0": None, "c2": 0.25}
    assert best_line(charts) == "\u2605 Best so far: trial f1, val_loss=0.2"
    assert main(["plot", str(folder), "-o", str(tmp_path / "report.html")]) == 0
    assert "Best so far: trial f1, val_loss=0.2" in (tmp_path / "report.html").read_text()

    assert search_progress(session, 60.0).best == expected  # the live table's header and star
    assert re.search(r"best val_loss=0\.2 \(trial f1\)", BatchProgress(session, write=print).summary_line())

    retention = StoppedTrialCheckpoints.for_session(optimizer, SimpleNamespace(stop_reason=None, interrupted=False), session.trial_best)
    assert retention._best(trials).trial_id == "f1"

    results = [_result(trial) for trial in trials]  # as Ray's ResultGrid lists them: in Tune's order
    assert optimizer.best_result(results).path == trials[0].path
    optimizer.write_best_config(results, folder)
    target = tmp_path / "best.yaml"
    assert main(["export-best", str(folder), "-o", str(target)]) == 0
    assert yaml.safe_load(target.read_text())["model"]["init_args"]["lr"] == LR["f1"]


def test_a_search_whose_trials_reported_no_finite_value_has_no_best(tmp_path, base_dict, capsys):
    optimizer = ConfigDrivenOptimizer(base_dict, Space(), optimization_config=OptimizationConfig(max_epochs=2))
    session = TuneSession("exp", experiment_dir=tmp_path, session_id="20260101_000000_allnan")
    session.optimizer = session._create(optimizer)
    trial = _trial(session.session_dir, "e0")  # NaN, then inf; alone, as Ray's get_best_result would still pick it
    session.coordinator = SimpleNamespace(trials=[trial], status_of=lambda t: t.status, describe=dict, holds=None)
    for row in trial.rows:
        session._on_result(trial, row)
    session._write_summary()
    assert main(["status", str(session.session_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best"] is None
    assert (
        report_data(session.session_dir, yaml.safe_load((session.session_dir / "session_state.summary.yaml").read_text()))["best"] is None
    )
    assert "best: none yet" in BatchProgress(session, write=print).summary_line()
    result = _result(trial)
    assert optimizer.best_result([result]) is None and optimizer.write_best_config([result], session.session_dir) is None
    assert not (session.session_dir / "best_config.yaml").exists()
