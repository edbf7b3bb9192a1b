"""One source of truth for where a session lives: `OptimizationConfig`, which `TuneReflowCLI` may fill."""

from pathlib import Path

import pytest

from lightning_bohb.cli.tune_reflow import TuneReflowCLI
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.exceptions import ConfigError


def test_defaults_and_the_cli_filling_what_the_config_leaves_unset(tmp_path):
    assert OptimizationConfig().experiment_location == str(Path("./experiments/lightning_bohb").resolve())
    filled = OptimizationConfig().with_location("mine", str(tmp_path))
    assert filled.experiment_location == str(tmp_path / "mine")


def test_the_same_value_in_both_places_is_fine_a_different_one_is_an_error(tmp_path):
    config = OptimizationConfig(experiment_name="a", experiment_dir=str(tmp_path))
    assert config.with_location("a", str(tmp_path / ".." / tmp_path.name)).experiment_location == str(tmp_path / "a")
    with pytest.raises(ConfigError, match="`experiment_name` is 'b' in TuneReflowCLI but 'a' in OptimizationConfig"):
        config.with_location("b", None)
    with pytest.raises(ConfigError, match="`experiment_dir`"):
        config.with_location(None, str(tmp_path / "elsewhere"))


def test_the_cli_session_folder_follows_its_arguments(tmp_path):
    cli = TuneReflowCLI("guide", experiment_dir=tmp_path, session_id="x")
    assert cli.session_dir == tmp_path.resolve() / "guide" / "session_x"
    assert TuneReflowCLI(session_id="y").session_dir == Path("./experiments/lightning_bohb/session_y").resolve()
