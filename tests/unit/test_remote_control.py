"""Control from other nodes (`pause/remote.py`): without Ray, the actor body's token check, the control
file read as data, and what a remote request does to the driver; with a real local Ray, the driver's
side (`RemoteControlServer`) and its control file."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lightning_bohb.exceptions import SessionError
from lightning_bohb.pause.remote import RemoteControl, RemoteControlServer, read_control
from lightning_bohb.session.runner import TuneSession
from lightning_bohb.utils.layout import CONTROL_FILE

KEY = "k" * 32
ROGUE_JOB = Path(__file__).resolve().parents[1] / "e2e" / "rogue_control_job.py"  # another job of the cluster


def test_the_actor_queues_requests_with_its_token_only():
    actor = RemoteControl(KEY)
    assert not actor.request("", "pause")  # no request before the driver opens them with its token
    actor.open_requests(KEY, "s1", "secret", "host-a", 123)
    assert not actor.request("wrong", "pause") and not actor.request(None, "pause")
    assert not actor.request("secret", "rm -rf")  # only the known actions
    assert actor.next_request(KEY, timeout=0.01) is None
    assert actor.request("secret", "pause") and actor.request("secret", "quit")
    assert [actor.next_request(KEY, 0.01), actor.next_request(KEY, 0.01)] == ["pause", "quit"]
    assert actor.describe() == {"session_id": "s1", "host": "host-a", "pid": 123}  # never the token
    actor.close_requests(KEY)
    assert actor.next_request(KEY, timeout=5) is None  # returns at once after close_requests


def _write(tmp_path, record):
    (tmp_path / CONTROL_FILE).write_text(record if isinstance(record, str) else json.dumps(record))


GOOD = {"schema_version": 1, "namespace": "lightning_bohb", "actor": "lightning_bohb_control_20260101_000000_abcdef", "token": "t"}


def test_a_control_file_names_only_a_lightning_bohb_control_actor(tmp_path):
    _write(tmp_path, GOOD)
    assert read_control(tmp_path)["actor"] == GOOD["actor"]
    for bad, why in [
        ({**GOOD, "namespace": "other"}, "does not name a lightning_bohb control actor"),
        ({**GOOD, "actor": "someone_elses_actor"}, "does not name a lightning_bohb control actor"),
        ({**GOOD, "actor": "lightning_bohb_control_../x"}, "does not name a lightning_bohb control actor"),
        ({**GOOD, "token": ""}, "no token"),
        ("[1, 2]", "not a mapping"),
        ("{" * 10, "Expecting"),
        ("x" * 5000, "more than the 4096 bytes allowed"),
    ]:
        _write(tmp_path, bad)
        with pytest.raises(SessionError, match=f"The control file .* is corrupt \\(.*{why}"):
            read_control(tmp_path)


def test_without_a_control_file_it_says_where_to_pause(tmp_path):
    with pytest.raises(SessionError, match=f"has no {CONTROL_FILE}.*lightning-bohb pause {tmp_path}"):
        read_control(tmp_path)


def test_a_remote_pause_is_a_sigusr1_and_a_remote_quit_a_sigusr2(tmp_path):
    session = TuneSession(experiment_dir=tmp_path, session_id="remote", grace_period=3600)
    session._session_dir = tmp_path
    session._on_remote_request("pause")
    assert session.pause.pause_pending and not session.pause.quit_requested
    session._on_remote_request("quit")
    assert session.pause.quit_requested
    session.pause.detach()


def test_the_control_file_is_written_once_the_actor_holds_its_token_another_job_is_refused_and_it_never_outlives_stop(tmp_path):
    import ray

    from lightning_bohb.pause.channel import actor_name, create_control

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        opened, requested = threading.Event(), []
        got = threading.Event()
        control = create_control("t1", KEY)
        server = RemoteControlServer(
            tmp_path, "t1", lambda action: (requested.append(action), got.set()), control, actor_name("t1"), KEY, on_open=opened.set
        )
        server.start()  # returns at once; the thread writes the file when the actor holds the token
        assert opened.wait(120) and (tmp_path / CONTROL_FILE).is_file()
        record = read_control(tmp_path)
        assert record["actor"] == actor_name("t1")

        # Another job of the cluster finds the actor by listing named actors and calls it without the key.
        other = subprocess.run(
            [sys.executable, str(ROGUE_JOB), ray.get_runtime_context().gcs_address],
            capture_output=True, text=True, timeout=180,
        )
        assert other.returncode == 0, other.stderr[-3000:]
        answers = json.loads(other.stdout.strip().splitlines()[-1])
        assert len(answers) == 9, answers  # the 8 calls that change the actor, and a request with its own token
        assert all(answer.startswith("refused") for name, answer in answers.items() if name != "request"), answers
        assert answers["request"] == "False"  # its own token: not the driver's
        assert ray.get(control.pause_status.remote(), timeout=60) == (False, None)  # no pause, no ack, not released
        assert ray.get(control.acknowledgements.remote(), timeout=60) == {} and ray.get(control.notes.remote(), timeout=60) == {}
        assert ray.get(control.wait_while_paused.remote(0.01), timeout=60).value == "cancelled"
        assert requested == []  # the driver got nothing
        assert ray.get(control.request.remote(record["token"], "pause"), timeout=60)
        assert got.wait(60) and requested == ["pause"]
        server.stop()
        assert not (tmp_path / CONTROL_FILE).exists()

        # Stopped before the new actor's process is up: its thread finds the stop and writes nothing.
        late = create_control("t2", KEY)
        called = []
        server = RemoteControlServer(tmp_path, "t2", lambda action: None, late, actor_name("t2"), KEY, on_open=lambda: called.append(1))
        server.start()
        server.stop()
        assert not (tmp_path / CONTROL_FILE).exists() and not called
        ray.kill(control)
        ray.kill(late)
    finally:
        ray.shutdown()
