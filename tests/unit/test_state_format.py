"""The session state is plain data with a format version (issue 24): it round-trips, 0.1.0's pickled state
(format 0) migrates to it exactly, a newer format is refused with the release to install, and no object of
this package is pickled in it."""

import base64
import json
import os
import shutil
from pathlib import Path

import cloudpickle
import pytest

from lightning_bohb import ASHAStrategy, BOHBStrategy, HyperOptStrategy, OptimizationConfig, OptunaStrategy, RandomStrategy, SearchSpace
from lightning_bohb.cli.study import YamlSearchSpace
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session import migrations
from lightning_bohb.session.state import SessionStatus, TuneSessionState
from lightning_bohb.session.state_format import FORMAT_VERSION, TYPE_KEY, data_problem, state_data
from lightning_bohb.utils.files import make_private_dir
from lightning_bohb.utils.layout import LEGACY_STATE_FILE, STATE_FILE, SUMMARY_FILE
from test_session_files import assert_one_error, console_run
from test_trust import planted_pickle

DATA = Path(__file__).resolve().parents[1] / "data"
FORMAT_0 = [*sorted(DATA.glob("golden/*_127d5eb/paused/session_*/session_state.pkl")), DATA / "format0_57062d4" / "session_state.pkl"]
"""Format-0 states: those of the golden sessions paused by 0.1.0 (127d5eb), and one pickled by main at 57062d4 (the
last commit before format 1) with every field that commit had (BOHB's model settings, a CLI class, a script)."""


def _state(**fields) -> TuneSessionState:
    values = dict(
        session_id="20260101_000000_abcdef",
        experiment_name="exp",
        search_space=YamlSearchSpace(
            {"lr": {"loguniform": [1e-4, 0.1]}, "layers": {"choice": [1, (2, 3)]}}, {"metric": "val_loss", "mode": "min"}
        ),
        strategy=BOHBStrategy(reduction_factor=2, max_t=9, seed=3, top_n_percent=20, random_fraction=0.1),
        optimization_config=OptimizationConfig(max_epochs=9, num_samples=5, seed=7, pause_after="90m", checkpoint_compression="zstd"),
        base_config={"model": {"class_path": "m.M", "init_args": {"lr": 0.1, "sizes": (1, 2)}}, "odd": {1: "int key", TYPE_KEY: "ours?"}},
        base_config_source="/somewhere/config.yaml",
        sys_path=["/somewhere"],
        cli_arguments={"subclass_mode_model": True, "parser_kwargs": {"default_env": True}, "model_class": OptimizationConfig},
        status=SessionStatus.PAUSED,
        paused_at=["2026-01-01T00:30:00"],
        fingerprint={"classes": {"m.M": "0" * 16}},
        versions={"python": "3.11.7", "lightning_bohb": "0.1.0"},  # the default imports torch, Lightning and Ray: seconds
    )
    return TuneSessionState(**{**values, **fields})


def _same(left: TuneSessionState, right: TuneSessionState) -> None:
    for name, value in vars(left).items():
        other = getattr(right, name)
        if name in ("search_space", "strategy", "optimization_config"):
            assert type(other) is type(value) and vars(other) == vars(value), name
        else:
            assert other == value and type(other) is type(value), name


def _pickles(data) -> list:
    """Every pickled entry of state data."""
    if isinstance(data, list):
        return [found for item in data for found in _pickles(item)]
    if not isinstance(data, dict):
        return []
    own = [data] if data.get(TYPE_KEY) == "pickle" else []
    return own + [found for item in data.values() for found in _pickles(item)]


def test_a_state_round_trips_through_its_json_file(tmp_path):
    state = _state()
    state.save(tmp_path)
    assert not (tmp_path / LEGACY_STATE_FILE).exists()
    data = json.loads((tmp_path / STATE_FILE).read_text())
    assert data["format_version"] == FORMAT_VERSION and data["strategy"]["class_path"] == "lightning_bohb.core.strategies.BOHBStrategy"
    assert data["optimization_config"]["pause_after"] == "90m" and data["cli_arguments"]["model_class"][TYPE_KEY] == "class"
    loaded = TuneSessionState.load(tmp_path)
    _same(state, loaded)
    assert loaded.base_config["odd"] == {1: "int key", TYPE_KEY: "ours?"} and loaded.base_config["model"]["init_args"]["sizes"] == (1, 2)
    loaded.save(tmp_path)  # a second save writes the same file
    assert json.loads((tmp_path / STATE_FILE).read_text()) == data


@pytest.mark.parametrize(
    "strategy",
    [BOHBStrategy(), ASHAStrategy(grace_period=2), OptunaStrategy(n_startup_trials=3), HyperOptStrategy(), RandomStrategy(seed=1)],
)
def test_a_state_of_the_new_format_holds_no_pickle_of_this_package(tmp_path, strategy):
    _state(strategy=strategy).save(tmp_path)
    text = (tmp_path / STATE_FILE).read_text()
    assert _pickles(json.loads(text)) == [] and '"pickle"' not in text
    _same(_state(strategy=strategy), TuneSessionState.load(tmp_path))


class _NotPlain(SearchSpace):
    """A search space whose state is not its constructor's arguments."""

    def __init__(self):
        self.cache = {"drawn": 1}

    def get_search_space(self):
        return {"lr": 0.1}

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def test_only_objects_of_the_users_that_are_not_plain_are_pickled(tmp_path):
    state = _state(search_space=_NotPlain())
    data = state_data(state)
    (pickled,) = _pickles(data)
    assert pickled["class_path"].endswith("_NotPlain") and data["strategy"][TYPE_KEY] == "object"
    state.save(tmp_path)
    assert TuneSessionState.load(tmp_path).search_space.cache == {"drawn": 1}


@pytest.mark.parametrize("pickled", FORMAT_0, ids=lambda path: path.parts[-4] if "golden" in path.parts else path.parent.name)
def test_a_pickled_state_of_format_0_migrates_to_the_current_format_exactly(tmp_path, pickled):
    old = cloudpickle.loads(pickled.read_bytes())  # format 0, as 0.1.0 (or main before format 1) wrote it
    assert type(old).__name__ == "TuneSessionState" and old.versions["lightning_bohb"] == "0.1.0"
    data = migrations.migrate(0, old)
    assert data["format_version"] == FORMAT_VERSION and data_problem(data) is None and _pickles(data) == []
    json.dumps(data, allow_nan=False)

    session = make_private_dir(tmp_path / "exp" / "session_x")
    shutil.copy(pickled, session / LEGACY_STATE_FILE)
    state = TuneSessionState.load(session)
    same = ("session_id", "experiment_name", "status", "paused_at", "base_config", "base_config_source", "script", "sys_path")
    for name in (*same, "cli_arguments", "fingerprint", "versions"):
        assert getattr(state, name) == getattr(old, name), name
    for name in ("search_space", "optimization_config"):
        assert vars(getattr(state, name)) == vars(getattr(old, name)), name
    assert type(state.strategy) is type(old.strategy) and state.strategy.describe() == {**state.strategy.describe(), **vars(old.strategy)}
    state.save(session)  # written back in the new format; the pickle goes
    assert not (session / LEGACY_STATE_FILE).exists() and json.loads((session / STATE_FILE).read_text())["format_version"] == FORMAT_VERSION
    _same(state, TuneSessionState.load(session))


def test_a_newer_format_is_refused_with_the_release_to_install_and_nothing_unpickled(tmp_path, capsys):
    marker = tmp_path / "unpickled"
    session = make_private_dir(tmp_path / "exp" / "session_20260101_000000_abcdef")
    _state().save(session)
    data = json.loads((session / STATE_FILE).read_text())
    data.update(format_version=FORMAT_VERSION + 1, written_by="9.1.0")
    data["strategy"] = {TYPE_KEY: "pickle", "class_path": "x.Y", "data": base64.b64encode(planted_pickle(marker)).decode()}
    (session / STATE_FILE).write_text(json.dumps(data))
    line = assert_one_error(*console_run(capsys, "resume", session))
    assert f"has format version {FORMAT_VERSION + 1}, written by lightning_bohb 9.1.0" in line
    assert "pip install 'lightning-bohb>=9.1.0'" in line and not marker.exists()
    with pytest.raises(SessionError, match=f"reads format versions up to {FORMAT_VERSION}"):
        TuneSessionState.load(session)


def test_a_pickle_inside_the_json_is_not_loaded_from_a_folder_others_can_write(tmp_path, capsys):
    marker = tmp_path / "unpickled"
    session = make_private_dir(tmp_path / "exp" / "session_20260101_000000_abcdef")
    _state().save(session)
    data = json.loads((session / STATE_FILE).read_text())
    data["strategy"] = {TYPE_KEY: "pickle", "class_path": "x.Y", "data": base64.b64encode(planted_pickle(marker)).decode()}
    (session / STATE_FILE).write_text(json.dumps(data))
    (session / SUMMARY_FILE).write_text("schema_version: 1\nstatus: PAUSED\n")
    os.chmod(session, 0o770)
    assert "writable by group or others" in assert_one_error(*console_run(capsys, "resume", session))
    assert not marker.exists()
