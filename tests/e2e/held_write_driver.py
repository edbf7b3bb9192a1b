"""Runs examples/optimize.py with one of the driver's state writes held half-done, for kill -9 tests.

    python held_write_driver.py {session-state|tune-snapshot} MARKER <optimize.py arguments>

Once a trial has saved its second checkpoint, the next write of the chosen kind (LightningTune's
session files, or Ray Tune's experiment snapshot) writes part of its bytes, creates MARKER and
blocks: the test kills the driver while that write is in progress.
"""

import glob
import os
import runpy
import sys
import tempfile
import threading
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "optimize.py"


def _hold(marker: str) -> None:
    Path(marker).touch()
    threading.Event().wait()


def _second_checkpoint_under(folder) -> bool:
    """A trial has saved more than one checkpoint (older ones may have been deleted since)."""
    found = glob.glob(os.path.join(folder, "**", "checkpoint_*"), recursive=True)
    return any(not path.endswith("checkpoint_000000") for path in found)


def hold_session_state_write(marker: str) -> None:
    from lightning_bohb.session import state

    real_write = state.atomic_write

    def atomic_write(path, data):
        if not _second_checkpoint_under(Path(path).parent / "tune"):
            return real_write(path, data)
        payload = data.encode() if isinstance(data, str) else data
        fd, _ = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent)
        os.write(fd, payload[: len(payload) // 2])  # what atomic_write has done when the kill lands
        _hold(marker)

    state.atomic_write = atomic_write


def hold_tune_snapshot_write(marker: str) -> None:
    from lightning_bohb.session.atomic_fs import AtomicFile

    real_write = AtomicFile.write

    def write(self, data):
        name = os.path.basename(self.path)
        if name.startswith("experiment_state") and _second_checkpoint_under(os.path.dirname(self.path)):
            real_write(self, data[: len(data) // 2])
            _hold(marker)
        return real_write(self, data)

    AtomicFile.write = write


if __name__ == "__main__":
    kind, marker, *arguments = sys.argv[1:]
    {"session-state": hold_session_state_write, "tune-snapshot": hold_tune_snapshot_write}[kind](marker)
    sys.argv = [str(EXAMPLE), *arguments]
    runpy.run_path(str(EXAMPLE), run_name="__main__")
