import pytest

from lightning_bohb.core.config import OptimizationConfig
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
    ],
)
def test_invalid_field_names_field_value_and_constraint(field, value, constraint):
    with pytest.raises(ConfigError) as info:
        OptimizationConfig(**{field: value})
    assert f"`{field}` is {value!r}, but must be `{constraint}`" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LightningTuneError)
