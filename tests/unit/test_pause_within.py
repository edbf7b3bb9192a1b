"""``lightning-bohb pause --within``: the pause's deadline reaches the driver with its SIGUSR1.

A real driver process (this test's child) with the session's signal handler: the command writes the
deadline into the session folder and signals; the handler reads it as the pause's deadline.
"""

import os
import signal
import subprocess
import sys
import time

from lightning_bohb.cli.main import main

CHILD = """
import signal, sys, threading
from lightning_bohb.session.runner import TuneSession
session = TuneSession(experiment_dir=sys.argv[1], session_id="s1", grace_period=3600)
heard = threading.Event()
def handler(signum, frame):
    session.on_pause_signal(signum)
    heard.set()
signal.signal(signal.SIGUSR1, handler)
print("ready", flush=True)
heard.wait(60)
print(session.pause.pause_pending, session.pause.deadline, flush=True)
session.pause.detach()
"""


def test_within_sets_the_deadline_of_the_pause_the_driver_gets(tmp_path):
    from lightning_bohb.pause.state import write_pause_within

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    session_dir = tmp_path / "lightning_bohb" / "session_s1"
    session_dir.mkdir(parents=True)  # what `pause` does before it signals (the rest needs a live session lock)
    before = time.time()
    write_pause_within(session_dir, 60)
    os.kill(child.pid, signal.SIGUSR1)
    pending, deadline = child.stdout.readline().split()
    assert child.wait(60) == 0
    assert pending == "True" and before + 60 <= float(deadline) <= time.time() + 60  # not the 3600 s grace period
    assert not (session_dir / "pause_within.json").exists()


def test_within_and_now_contradict_and_a_duration_must_be_positive(capsys):
    assert main(["pause", "/nowhere", "--now", "--within", "5s"]) == 1
    assert "--now and --within contradict each other" in capsys.readouterr().err
    assert main(["pause", "/nowhere", "--within", "0s"]) == 2  # argparse's usage error
    assert "invalid duration '0s'; give a time > 0" in capsys.readouterr().err
