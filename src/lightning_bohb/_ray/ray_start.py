"""`RayStart`: the driver's ``ray.init``, started on a thread, and the shutdown of what it started.

``ray.init`` of a local Ray takes 2-4 s, most of it waiting for the processes it starts (GCS, raylet)
to come up. Started on a thread by `TuneSession.run` once the session is sure to run, Ray comes up
while the driver builds its search and code fingerprint (and, for a session object that has not parsed
its config yet, parses it); `wait` blocks until it is up, before anything calls Ray. A resume's config
parse stays before Ray's start: a changed model is refused before Ray starts. Ray has no asynchronous
start of its own, hence this module.

The thread lives until the shutdown: Ray starts its GCS and raylet with ``PR_SET_PDEATHSIG``, which
kills a child when the *thread* that started it ends, not the process.

Shutdown ends the autoscaler monitor first (`end_local_autoscaler_monitor`: it saves
``ray.shutdown`` a 1 s wait).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

# Quiet from each worker's start: Tune logs a trial's restore before the trial function runs.
_WORKER_SETUP_HOOK = "lightning_bohb.core.worker_setup.quiet_trial_output"
_RAY_WORKER_LOGGER = "ray._private.worker"
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_QUIET = (
    # ``ray.init`` off the main thread warns that it set no SIGTERM handler: the session installs its own.
    "SIGTERM handler is not set",
    # A new local Ray turns token authentication on (Ray's default, kept) and says so at WARNING on every
    # run; on a cluster, the token is the cluster's business (docs: the cluster page).
    "Token authentication is enabled for this Ray cluster",
)


class _QuietStart(logging.Filter):
    """Drops the warnings of a local ``ray.init`` that say nothing to the user of a session (`_QUIET`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _QUIET)


class RayStart:
    """``ray.init`` for a session driver on a thread, unless Ray is already initialized in this process
    (then the session uses that Ray and leaves it running).

    ``import_path``: the session's import path (folders), put first on ``PYTHONPATH`` in every Ray worker,
    so the user's classes unpickle there as in the driver (a session resumed from a shell without the
    ``PYTHONPATH`` it started with). A local Ray's workers keep the driver's ``PYTHONPATH`` after them;
    on a cluster, each node's own (``${PYTHONPATH}``, expanded by Ray on the node).
    """

    def __init__(self, import_path: Sequence[str] = ()) -> None:
        import ray

        self.import_path = [str(p) for p in import_path]
        self.owned = not ray.is_initialized()
        self.temp_dir = private_ray_temp_dir() if self.owned else None
        self._error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        self._up = threading.Event()  # ray.init returned (or raised)
        self._release = threading.Event()  # Ray is shut down: the thread may end
        self._filter: Optional[logging.Filter] = None
        if self.owned:
            self._filter = _QuietStart()
            for name in (_RAY_WORKER_LOGGER, _RAY_AUTH_LOGGER):
                logging.getLogger(name).addFilter(self._filter)
            self._thread = threading.Thread(target=self._init, name="lightning_bohb-ray-init", daemon=True)
            self._thread.start()

    def _init(self) -> None:
        import ray

        env_vars: Dict[str, str] = {}
        runtime_env: Dict[str, Any] = {"worker_process_setup_hook": _WORKER_SETUP_HOOK}
        private: Dict[str, Any] = {}
        if self.temp_dir:  # Ray's folder (Ray makes it 0777), and the trials' TMPDIR (a resumed trial copies its checkpoint there)
            private["_temp_dir"] = str(self.temp_dir / "ray")
            env_vars["TMPDIR"] = str(self.temp_dir)
        if self.import_path:
            env_vars["PYTHONPATH"] = worker_pythonpath(self.import_path)
        if env_vars:
            runtime_env["env_vars"] = env_vars
        try:
            ray.init(include_dashboard=False, runtime_env=runtime_env, **private)
        except BaseException as err:  # re-raised by `wait` on the driver's thread
            self._error = err
        finally:
            self._up.set()
        self._release.wait()  # Ray's processes die with this thread

    def _wait_up(self) -> None:
        self._up.wait()
        if self._filter is not None:
            for name in (_RAY_WORKER_LOGGER, _RAY_AUTH_LOGGER):
                logging.getLogger(name).removeFilter(self._filter)
            self._filter = None

    def wait(self) -> None:
        """Block until Ray is up; raise what ``ray.init`` raised."""
        if self._thread is not None:
            self._wait_up()
        if self._error is not None:
            raise self._error

    def shutdown(self) -> None:
        """Shut down the Ray this started (waiting for its start first) and remove its folder; idempotent."""
        if not self.owned:
            return
        self.owned = False
        self._wait_up()
        import ray

        try:
            if ray.is_initialized():
                end_local_autoscaler_monitor()
                ray.shutdown()
        finally:
            self._release.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def end_local_autoscaler_monitor() -> bool:
    """Kill the autoscaler monitor of the local Ray this process started; True if there was one.

    It does not exit within the second `ray.shutdown` gives it after SIGTERM, so shutdown waits
    that full second before killing it anyway: most of the time between a saved pause and the
    end of the process. The monitor keeps no state a session needs.
    """
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    if node is None:
        return False
    infos = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
    for info in infos:
        info.process.kill()
        info.process.wait(timeout=5)
    return bool(infos)


def worker_pythonpath(import_path: Sequence[str]) -> str:
    """``PYTHONPATH`` for Ray's workers: ``import_path`` first, then what the workers would have had."""
    if os.environ.get("RAY_ADDRESS"):
        rest = ["${PYTHONPATH}"]  # the node's own, expanded there (Ray drops it when unset)
    else:
        rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([*import_path, *rest]))


def private_ray_temp_dir() -> Optional[Path]:
    """A new owner-only folder (0700) to hold the temporary folder of the local Ray this driver starts.

    Ray keeps its logs, sockets and Tune's staging copies of the experiment (trial results, searcher
    state) there, in folders it makes world-writable: inside this one only their owner reaches them.
    None where Ray will connect to a cluster instead (``RAY_ADDRESS``), or where the path would make
    Ray's socket paths longer than the 107 bytes a Unix socket allows: Ray's own ``<tmp>/ray`` then.
    """
    if os.environ.get("RAY_ADDRESS"):
        return None
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    # <base>/lbohb_XXXXXXXX/ray/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store
    if len(base) + len("/lbohb_XXXXXXXX/ray/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store") > 107:
        return None
    return Path(tempfile.mkdtemp(prefix="lbohb_", dir=base))
