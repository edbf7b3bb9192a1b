"""A pause on a 2-node local Ray cluster reaches the trial running on the second node."""

import json

import pytest
import ray
from ray.cluster_utils import Cluster

from e2e_support import LrSpace, write_config
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SessionPaused, TuneReflowCLI


class PauseWhenBothTrialsReported(TuneReflowCLI):
    """Pauses once two different trials have reported, i.e. while both run, one per node."""

    def should_auto_pause(self, metrics):
        self.reported = getattr(self, "reported", set()) | {metrics["trial_id"]}
        return len(self.reported) == 2


@pytest.fixture
def two_node_cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _events(record_dir):
    return [json.loads(line) for path in record_dir.glob("*.jsonl") for line in path.open()]


def test_pause_reaches_trial_on_second_node_and_resumes(tmp_path, two_node_cluster):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    optimizer = ConfigDrivenOptimizer(
        write_config(tmp_path, record_dir, min_epoch_seconds=1.0),
        LrSpace(),
        RandomStrategy(),
        OptimizationConfig(max_epochs=4, num_samples=2, max_concurrent_trials=2, seed=3, pause_timeout=120),
    )
    cli = PauseWhenBothTrialsReported("cluster", experiment_dir=tmp_path / "experiments", enable_pause=False)
    with pytest.raises(SessionPaused):
        cli.run(optimizer)

    before = _events(record_dir)
    nodes = {event["node"] for event in before}
    assert len(nodes) == 2, "the two trials should have run on different nodes"
    trained = {}
    for event in before:
        if event["hook"] == "train_epoch_end":
            trained.setdefault(event["node"], set()).add(event["epoch"])
    assert all(len(epochs) < 4 for epochs in trained.values()), "both trials paused before finishing"
    summary = (cli.session_dir / "session_state.summary.yaml").read_text()
    assert "status: PAUSED" in summary

    results = TuneReflowCLI.resume(cli.session_dir).run()
    assert not results.errors
    ends = [(e["pid"], e["epoch"]) for e in _events(record_dir) if e["hook"] == "train_epoch_end"]
    per_trial = {}
    for path in record_dir.glob("*.jsonl"):
        epochs = [json.loads(line)["epoch"] for line in path.open() if '"train_epoch_end"' in line]
        per_trial[path.stem] = epochs
    assert len(ends) == 8
    assert all(epochs == [0, 1, 2, 3] for epochs in per_trial.values()), per_trial
