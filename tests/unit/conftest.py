"""Shared fixtures for the fast unit tests: no Ray cluster, no trials.

The example model (``examples/digits_model.py``) and this folder's helper classes
(``lbohb_test_helpers.py``) are made importable so configs can name them by ``class_path``.
"""

import os
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
for folder in (EXAMPLES, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

MODEL = "digits_model.DigitsClassifier"
DATA = "digits_model.DigitsDataModule"


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """What an earlier test in this process may have changed: the umask (a trial function run here
    sets 077) and Lightning's seed variables (``seed_everything`` exports ``PL_GLOBAL_SEED``)."""
    previous = os.umask(0o022)
    os.umask(previous)
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    yield
    os.umask(previous)


@pytest.fixture
def example_yaml() -> Path:
    return EXAMPLES / "config.yaml"


@pytest.fixture
def base_dict() -> dict:
    """The example config as a dict, freshly built for each test."""
    return {
        "seed_everything": 42,
        "trainer": {"accelerator": "cpu", "max_epochs": 10},
        "model": {"class_path": MODEL, "init_args": {"hidden_size": 64, "lr": 0.001}},
        "data": {"class_path": DATA, "init_args": {"batch_size": 64}},
    }


@pytest.fixture
def write_yaml(tmp_path):
    """Write text (or a dict, dumped as YAML) to a file under tmp_path and return its path."""

    def write(content, name="config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write
