"""Runs examples/optimize.py with one of the driver's state writes held half-done, for kill -9 tests.

    python held_write_driver.py {session-state|tune-snapshot|trial-log} MARKER <optimize.py arguments>

Once a trial has saved its second checkpoint, the next write of the chosen kind (LightningTune's
session files, Ray Tune's experiment snapshot, or that trial's result log as Tune copies its
snapshot into the session) writes part of its bytes, creates MARKER and blocks: the test kills
the driver while that write is in progress.
"""

import glob
import os
import runpy
import sys
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


# The files each kind of write goes to, and where the trials' checkpoints are, from that file's folder.
HELD_FILES = {
    "session-state": ("session_state", "tune"),
    "tune-snapshot": ("experiment_state", "."),
    "trial-log": ("result.json", "."),
}


def hold_writes(kind: str, marker: str) -> None:
    from lightning_bohb.utils.files import AtomicFile

    prefix, trials_folder = HELD_FILES[kind]
    real_write = AtomicFile.write

    def write(self, data):
        folder, name = os.path.split(self.path)
        if name.startswith(prefix) and _second_checkpoint_under(os.path.join(folder, trials_folder)):
            real_write(self, bytes(data)[: len(data) // 2])  # what the write has done when the kill lands
            _hold(marker)
        return real_write(self, data)

    AtomicFile.write = write


if __name__ == "__main__":
    kind, marker, *arguments = sys.argv[1:]
    hold_writes(kind, marker)
    sys.argv = [str(EXAMPLE), *arguments]
    runpy.run_path(str(EXAMPLE), run_name="__main__")
