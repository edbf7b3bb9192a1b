import pytest

from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.exceptions import ConfigError, LightningTuneError


def test_defaults_are_valid_and_serialisable():
    config = OptimizationConfig()
    assert config.to_dict()["max_epochs"] == 10
    assert config.to_dict()["errored_trial_policy"] == "resume"
    assert OptimizationConfig(max_concurrent_trials=None, gpus_per_trial=0, seed=0).seed == 0


@pytest.mark.parametrize(
    "field, value, constraint",
    [
        ("max_epochs", 0, "max_epochs >= 1"),
        ("num_samples", 0, "num_samples >= 1"),
        ("max_concurrent_trials", 0, "max_concurrent_trials >= 1"),
        ("experiment_name", "  ", "a non-empty name"),
        ("cpus_per_trial", 0, "cpus_per_trial > 0"),
        ("gpus_per_trial", -1, "gpus_per_trial >= 0"),
        ("checkpoints_to_keep", 0, "checkpoints_to_keep >= 1"),
        ("pause_timeout", 0, "pause_timeout > 0"),
        ("errored_trial_policy", "skip", "one of ['resume', 'restart', 'fail']"),
        ("checkpoint_every", 0, "checkpoint_every >= 1"),
        ("checkpoint_compression", "gzip", "one of ['zstd', None]"),
    ],
)
def test_invalid_field_names_field_value_and_constraint(field, value, constraint):
    with pytest.raises(ConfigError) as info:
        OptimizationConfig(**{field: value})
    assert f"`{field}` is {value!r}, but must be `{constraint}`" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LightningTuneError)


def test_pause_after_and_pause_at_deadlines():
    import datetime

    now = datetime.datetime(2026, 1, 1, 22, 30).timestamp()
    assert OptimizationConfig(pause_after="90m").auto_pause_deadline(now) == now + 5400
    at = OptimizationConfig(pause_at="06:00").auto_pause_deadline(now)
    assert datetime.datetime.fromtimestamp(at) == datetime.datetime(2026, 1, 2, 6, 0)  # the next 06:00
    both = OptimizationConfig(pause_after=60, pause_at="23:00").auto_pause_deadline(now)
    assert both == now + 60
    assert OptimizationConfig().auto_pause_deadline(now) is None


@pytest.mark.parametrize("field, value", [("pause_after", "soon"), ("pause_after", 0), ("pause_at", "25:00")])
def test_invalid_auto_pause_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        OptimizationConfig(**{field: value})
