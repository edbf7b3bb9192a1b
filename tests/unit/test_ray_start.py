"""`RayStart`: the driver's ``ray.init`` on a thread (a real local Ray), and the shutdown of what it started."""
import logging
import threading

import pytest
import ray

from lightning_bohb._ray.ray_start import RayStart


@ray.remote(num_cpus=0)
def _pid() -> int:
    import os

    return os.getpid()


@ray.remote(num_cpus=0)
def _import_file(name: str) -> str:
    import importlib

    return importlib.import_module(name).__file__


def _threads() -> set:
    return {t.name for t in threading.enumerate()}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_ray_started_on_a_thread_keeps_running_and_is_shut_down_with_its_folder(tmp_path, monkeypatch):
    ray_logger = logging.getLogger("ray._private.worker")  # Ray's loggers do not propagate to the root
    records = _Records()
    ray_logger.addHandler(records)
    probe = tmp_path / "lbohb_worker_probe.py"  # on no import path but the session's
    probe.write_text("")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    try:
        start = RayStart([str(tmp_path)])
        start.wait()
    finally:
        ray_logger.removeHandler(records)
    assert "Started a local Ray instance." in records.messages  # the handler sees Ray's messages
    assert not [m for m in records.messages if "SIGTERM handler is not set" in m]  # the session installs its own
    assert start.owned and start.temp_dir is not None and start.temp_dir.is_dir()
    assert ray.is_initialized()
    # Ray kills the GCS and raylet when the thread that started them ends (PR_SET_PDEATHSIG): the
    # thread lives on until the shutdown, so tasks still run after a while.
    assert isinstance(ray.get(_pid.remote(), timeout=120), int)
    assert "lightning_bohb-ray-init" in _threads()
    assert ray.get(_pid.remote(), timeout=120) > 0
    assert ray.get(_import_file.remote("lbohb_worker_probe"), timeout=120) == str(probe)  # the session's import path
    start.shutdown()
    assert not ray.is_initialized() and not start.temp_dir.exists()
    assert "lightning_bohb-ray-init" not in _threads()
    start.shutdown()  # idempotent


def test_a_local_run_prints_no_token_authentication_notice():
    """What a user sees (a process of its own, as `lightning-bohb run`): Ray turns token authentication on
    for the local Ray it starts (RAY_AUTH_MODE unset) and keeps it on, without its WARNING on every run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    code = "from lightning_bohb._ray.ray_start import RayStart\nstart = RayStart()\nstart.wait()\nstart.shutdown()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Started a local Ray instance" in done.stderr and "Token authentication" not in done.stderr


def test_a_ray_already_running_is_used_and_left_running():
    ray.init(num_cpus=1, include_dashboard=False)
    try:
        start = RayStart()
        assert not start.owned and start.temp_dir is None
        start.wait()
        start.shutdown()
        assert ray.is_initialized()
    finally:
        ray.shutdown()


def test_what_ray_init_raises_is_raised_by_wait_and_nothing_is_left(monkeypatch):
    def failing_init(*args, **kwargs):
        raise ConnectionError("no GCS at that address")

    monkeypatch.setattr(ray, "init", failing_init)
    start = RayStart()
    with pytest.raises(ConnectionError, match="no GCS"):
        start.wait()
    start.shutdown()
    assert start.temp_dir is not None and not start.temp_dir.exists()
    assert "lightning_bohb-ray-init" not in _threads()
