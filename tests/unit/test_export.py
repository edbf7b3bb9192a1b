"""``lightning-bohb export`` (CSV, one row per trial-epoch) and ``plot`` (self-contained HTML), from files only."""

import csv
import json
import math
import os
import re

from fake_sessions import make_session
from lightning_bohb.cli.export import plotly_js
from lightning_bohb.cli.format import number
from lightning_bohb.cli.main import main
from lightning_bohb.session.history import SessionHistory, chart_data, epoch_table, milestones
from lightning_bohb.session.state import read_summary


def test_csv_has_one_row_per_trial_epoch_with_config_columns(tmp_path, capsys):
    session = make_session(tmp_path)
    out = tmp_path / "results.csv"
    assert main(["export", str(session), "--csv", str(out)]) == 0
    assert "Wrote 5 rows (2 trials)" in capsys.readouterr().out
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["trial_id"], r["training_iteration"]) for r in rows] == [
        ("t_00000", "1"), ("t_00000", "2"), ("t_00000", "3"), ("t_00000", "4"), ("t_00001", "1")]
    header = list(rows[0])
    assert header[:4] == ["trial_id", "trial_status", "training_iteration", "epoch"]
    assert header[-2:] == ["config/hidden_size", "config/lr"]  # Ray's ResultGrid.get_dataframe() naming
    assert rows[3]["val_loss"] == "0.3" and rows[4]["config/lr"] == "0.0001" and rows[0]["trial_status"] == "TERMINATED"


def test_csv_to_stdout(tmp_path, capsys):
    session = make_session(tmp_path)
    assert main(["export", str(session), "--csv", "-"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("trial_id,trial_status,training_iteration,epoch,")


def test_an_epoch_logged_twice_keeps_the_later_row_and_garbage_is_skipped(tmp_path):
    session = make_session(tmp_path)
    (path,) = [p for p in (session / "tune").glob("*t_00001*/result.json")]
    with open(path, "a") as handle:
        handle.write("not json\n[1, 2]\n")
        handle.write(json.dumps({"val_loss": 1.5, "training_iteration": 1, "trial_id": "t_00001", "config": {"lr": 0.0001}}) + "\n")
        handle.write('{"val_loss": 9, "training_iter')  # cut off mid-write
    _, rows = epoch_table(session)
    assert [r["val_loss"] for r in rows if r["trial_id"] == "t_00001"] == [1.5]


def test_links_in_a_session_are_never_followed(tmp_path):
    session = make_session(tmp_path)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"val_loss": 0.0, "training_iteration": 1, "trial_id": "planted"}) + "\n")
    (session / "tune" / "planted_dir").mkdir()
    os.symlink(outside, session / "tune" / "planted_dir" / "result.json")
    os.symlink(tmp_path, session / "tune" / "linked_trial")
    assert [t.trial_id for t in SessionHistory(session).trials()] == ["t_00000", "t_00001"]


def test_history_rereads_only_changed_files(tmp_path):
    session = make_session(tmp_path)
    history = SessionHistory(session)
    first = {t.trial_id: t for t in history.trials()}
    assert {t.trial_id: t for t in history.trials()}["t_00000"] is first["t_00000"]  # unchanged: cached
    (path,) = [p for p in (session / "tune").glob("*t_00001*/result.json")]
    with open(path, "a") as handle:
        handle.write(json.dumps({"val_loss": 1.0, "training_iteration": 2, "trial_id": "t_00001"}) + "\n")
    again = {t.trial_id: t for t in history.trials()}
    assert again["t_00000"] is first["t_00000"] and len(again["t_00001"].rows) == 2


def test_chart_data_marks_trials_stopped_early_and_asha_rungs(tmp_path):
    session = make_session(tmp_path)
    data = chart_data(session, read_summary(session))
    by_id = {t["id"]: t for t in data["trials"]}
    assert by_id["t_00001"]["stopped_early"] and not by_id["t_00000"]["stopped_early"]
    assert by_id["t_00000"]["metrics"]["val_loss"] == [1.0, 0.6, 0.4, 0.3] and by_id["t_00000"]["best"] == 0.3
    assert data["milestones"] == [1, 2, 4] and data["metric"] == "val_loss" and "val_acc" in data["metrics"]


def test_asha_rungs_match_rays_bracket():
    from ray.tune.schedulers.async_hyperband import _Bracket

    for grace, factor, max_t in [(1, 2, 4), (1, 3, 9), (2, 3, 20), (1, 4, 100)]:
        bracket = _Bracket(min_t=grace, max_t=max_t, reduction_factor=factor, s=0)
        expected = sorted(milestone for milestone, _ in bracket._rungs)
        assert milestones({"name": "asha", "grace_period": grace, "reduction_factor": factor, "max_t": None}, max_t) == expected
    assert milestones({"name": "random"}, 4) == []


def test_plot_writes_one_self_contained_html(tmp_path, capsys):
    session = make_session(tmp_path)
    out = tmp_path / "report.html"
    assert main(["plot", str(session), "-o", str(out)]) == 0
    page = out.read_text()
    assert plotly_js() in page  # plotly's bundled file, inlined
    ours = page.replace(plotly_js(), "")
    assert "<script src" not in ours and "<link" not in ours and "http" not in ours  # nothing fetched when opened
    data = json.loads(re.search(r'<script type="application/json" id="lb-data">(.*?)</script>', page, re.S).group(1))
    assert [t["id"] for t in data["trials"]] == ["t_00000", "t_00001"]
    assert "t_00001" in page and "stopped early" in page and "hidden_size: 32" in page  # table data and best config
    assert "Wrote the report" in capsys.readouterr().out


def test_report_data_cannot_close_its_script_element(tmp_path):
    from lightning_bohb.cli.export import script_json

    assert "</script>" not in script_json({"x": "</script><script>alert(1)</script>"})
    assert json.loads(script_json({"x": "</script>"})) == {"x": "</script>"}


def test_export_of_a_missing_session_is_one_error_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--csv", str(tmp_path / "x.csv")]) == 1
    assert capsys.readouterr().err.startswith("error: Session not found")


def test_trials_paused_on_request_are_told_apart_from_those_a_session_pause_stopped(tmp_path):
    import yaml

    from lightning_bohb.utils.layout import SUMMARY_FILE

    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "PAUSED"})
    summary = yaml.safe_load((session / SUMMARY_FILE).read_text())
    summary["pause"] = {"pause_requested": False, "held_trials": ["t_00000"], "pausing_trials": []}
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary))
    by_id = {t["id"]: t for t in chart_data(session, read_summary(session))["trials"]}
    assert by_id["t_00000"]["held"] and not by_id["t_00001"]["held"]


def test_the_best_trial_is_the_same_for_the_header_and_the_table_and_never_non_finite(tmp_path):
    import yaml

    from lightning_bohb.utils.layout import SUMMARY_FILE

    session = make_session(tmp_path, status="RUNNING", trial_status={"t_00000": "RUNNING", "t_00001": "RUNNING"})
    (path,) = [p for p in (session / "tune").glob("*t_00001*/result.json")]
    with open(path, "a") as handle:  # newer than the summary, which still says 0.3 for t_00000
        handle.write(json.dumps({"val_loss": 0.1, "training_iteration": 2, "epoch": 1, "trial_id": "t_00001"}) + "\n")
        handle.write('{"val_loss": NaN, "training_iteration": 3, "epoch": 2, "trial_id": "t_00001"}\n')
    summary = yaml.safe_load((session / SUMMARY_FILE).read_text())
    data = chart_data(session, summary)
    by_id = {t["id"]: t for t in data["trials"]}
    assert data["best"]["trial"] == "t_00001" and data["best"]["value"] == by_id["t_00001"]["best"] == 0.1
    assert by_id["t_00001"]["last"] == 0.1 and by_id["t_00001"]["epoch_numbers"] == [0, 1, 2]  # Lightning's numbering
    assert by_id["t_00000"]["outcome"] == "running" and by_id["t_00000"]["time_s"] == 4.0


def test_shared_files_get_the_users_umask(tmp_path, capsys):
    session = make_session(tmp_path)
    previous = os.umask(0o027)
    try:
        assert main(["plot", str(session), "-o", str(tmp_path / "report.html")]) == 0
        assert main(["export", str(session), "--csv", str(tmp_path / "out" / "results.csv")]) == 0
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "report.html").st_mode & 0o777 == 0o640  # not the 0600 of the session's own files
    assert os.stat(tmp_path / "out" / "results.csv").st_mode & 0o777 == 0o640


def test_the_report_has_parallel_coordinates_importance_and_the_best_trial_first(tmp_path):
    import random

    import yaml

    from lightning_bohb.cli.export import render_report, report_data
    from lightning_bohb.utils.layout import SUMMARY_FILE

    session = make_session(tmp_path)
    summary = yaml.safe_load((session / SUMMARY_FILE).read_text())
    summary["search_space"] = {"lr": "loguniform(1e-4, 1e-1)", "hidden_size": "choice([16, 32, 64])"}
    rng = random.Random(0)
    for index in range(2, 9):  # more trials, whose val_loss depends on lr only
        lr, hidden = 10 ** rng.uniform(-4, -1), rng.choice([16, 32, 64])
        loss = abs(math.log10(lr) + 2.5) + 0.01 * rng.random()
        summary["trials"].append({"id": f"t_{index:05d}", "status": "TERMINATED", "config": {"hidden_size": hidden, "lr": lr},
                                  "epochs": 4, "last": loss, "best": loss})
    data = report_data(session, summary)
    importances = data["importance"]["importances"]
    assert [row["name"] for row in importances][0] == "lr" and importances[0]["importance"] > 0.5
    assert "fANOVA" in data["importance"]["method"] and data["colors"]["stopped early"] != data["colors"]["failed"]
    page = render_report(session, summary, data, "")
    assert 'id="lb-parcoords"' in page and 'id="lb-importance"' in page
    searched = re.search(r'<pre id="lb-best-searched">(.*?)</pre>', page, re.S).group(1)
    best = data["best"]["config"]
    assert searched.splitlines()[1:] == [f"lr: {number(best['lr'])}", f"hidden_size: {best['hidden_size']}"]  # the search space's order
    assert page.index('id="lb-best-searched"') < page.index('id="lb-best"')  # the searched values before the complete config


def test_importance_needs_a_few_trials_and_some_variation():
    from lightning_bohb.session.importance import param_importance

    two = [{"config": {"lr": 0.1}, "best": 1.0}, {"config": {"lr": 0.2}, "best": 2.0}]
    assert param_importance(two, "min")["note"].startswith("Needs 3 trials") and param_importance(two, "min")["importances"] == []
    same = [{"config": {"lr": 0.1}, "best": float(i)} for i in range(4)]
    assert param_importance(same, "min")["note"] == "No searched hyperparameter took more than one value yet."
