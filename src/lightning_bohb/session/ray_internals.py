"""The few Ray Tune internals LightningTune relies on, in one place.

Each function fails loudly, naming the Ray version, if a Ray upgrade changes what it touches;
`tests/unit/test_ray_internals.py` runs them against the installed Ray.
"""

from __future__ import annotations

import signal
import threading


def _ray_version() -> str:
    import ray

    return ray.__version__


def tune_interrupt_event() -> threading.Event:
    """The event `ray.tune.run` checks to end its loop gracefully (what its SIGUSR1 handler sets).

    Setting it ends the run the way Tune's own Ctrl+C does: the loop stops, the experiment is
    snapshotted with unfinished trials still RUNNING, and they resume on restore. Call on the main
    thread while `tune.run` is set up (e.g. from a Tune callback's ``setup``).
    """
    handler = signal.getsignal(signal.SIGUSR1)
    for cell in getattr(handler, "__closure__", None) or ():
        if isinstance(cell.cell_contents, threading.Event):
            return cell.cell_contents
    raise RuntimeError(
        f"Ray Tune {_ray_version()} no longer installs its interrupt handler the way lightning_bohb "
        "expects (an Event in the SIGUSR1 handler's closure). Pin ray[tune]==2.60.0 or upgrade lightning_bohb."
    )
