"""`RayStart`: the driver's ``ray.init`` on a thread (a real local Ray), and the shutdown of what it started."""
import threading

import pytest
import ray

from lightning_bohb._ray.ray_start import RayStart


@ray.remote(num_cpus=0)
def _pid() -> int:
    import os

    return os.getpid()


def _threads() -> set:
    return {t.name for t in threading.enumerate()}


def test_ray_started_on_a_thread_keeps_running_and_is_shut_down_with_its_folder(caplog):
    start = RayStart()
    assert start.owned and start.temp_dir is not None and start.temp_dir.is_dir()
    start.wait()
    assert ray.is_initialized()
    # Ray kills the GCS and raylet when the thread that started them ends (PR_SET_PDEATHSIG): the
    # thread lives on until the shutdown, so tasks still run after a while.
    assert isinstance(ray.get(_pid.remote(), timeout=120), int)
    assert "lightning_bohb-ray-init" in _threads()
    assert ray.get(_pid.remote(), timeout=120) > 0
    assert not [r for r in caplog.records if "SIGTERM handler is not set" in r.getMessage()]
    start.shutdown()
    assert not ray.is_initialized() and not start.temp_dir.exists()
    assert "lightning_bohb-ray-init" not in _threads()
    start.shutdown()  # idempotent


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
