"""Fixtures of the e2e tests: a local Ray per module, the uninterrupted reference search.

The helpers they use live in ``e2e_support.py``; the example model and the recording test model
(``e2e_models.py``) are made importable here, for the driver and its trials alike.
"""

import secrets
import subprocess
import sys

import pytest
import ray

from e2e_support import REPO, script_env, session_dir_of, start_search, trial_histories, write_config

for _folder in (REPO / "examples", REPO / "tests" / "e2e"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the whole test module (2 CPUs), shut down after its last test."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def token_cluster(tmp_path, monkeypatch):
    """A 2-node local Ray cluster with token authentication, in its own process (``ray_cluster_process.py``,
    started with this test's environment); RAY_ADDRESS and the token are set for the processes the test
    starts (the test process itself never joins it)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    folder = tmp_path / "cluster"
    folder.mkdir()
    cluster = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "e2e" / "ray_cluster_process.py")],
        cwd=folder,
        env=script_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = cluster.stdout.readline().strip()  # printed once both nodes are up
        assert address, "the cluster process printed no address"
        monkeypatch.setenv("RAY_ADDRESS", address)
        yield address
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=120)


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """The same seeded search, never paused: the reference every pause test compares with."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir)
    run = start_search(tmp_path, ["--base-config", str(config)])
    assert run.wait() == 0, run.output[-3000:]
    histories = trial_histories(session_dir_of(tmp_path / "experiments") / "tune")
    assert len(histories) == 2 and all(len(h) == 4 for h in histories.values()), histories
    return histories
