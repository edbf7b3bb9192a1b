"""Sessions in object storage, against a real S3 endpoint (moto's server on 127.0.0.1, one per module): the
working copy and its ordered puts, the lease's conditional writes, and the commands that take a URI. No Ray."""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

from fake_sessions import make_session
from lightning_bohb.cli.main import main
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.backend import view_session
from lightning_bohb.session.owner_record import new_record
from lightning_bohb.session.store import SessionStore, find_store_sessions
from lightning_bohb.session.store_lease import StoreLease, read_lease
from lightning_bohb.utils.layout import LOCK_FILE, STATE_FILE, SUMMARY_FILE
from lightning_bohb.utils.location_backend import is_uri
from lightning_bohb.utils.uris import join_uri, uri_parent

BUCKET = "unit-sessions"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free loopback port, and the AWS environment pointing at it (this module only)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    environment = dict(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    environment.update(AWS_DEFAULT_REGION="us-east-1")
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.1)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def experiment(s3):
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"


def _upload(folder, uri):
    store = SessionStore(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.write(path.relative_to(folder).as_posix(), path.read_bytes())
    return store


def test_uris():
    assert is_uri("s3://b/p") and is_uri("gs://b") and not is_uri("/tmp/x") and not is_uri("file:///tmp/x") and not is_uri("rel/s3:")
    assert join_uri("s3://b/p/?region=us-east-1", "exp", "session_1") == "s3://b/p/exp/session_1?region=us-east-1"
    assert uri_parent("s3://b/p/exp?x=1") == "s3://b/p?x=1"


def test_working_copy_puts_files_in_order_and_pulls_a_session_into_a_new_copy(experiment):
    uri = join_uri(experiment, "exp", "session_1")
    store = SessionStore(uri)
    (store.local / STATE_FILE).write_bytes(b"state")
    (store.local / SUMMARY_FILE).write_bytes(b"summary")
    store.push(STATE_FILE, SUMMARY_FILE)
    assert oct(store.local.stat().st_mode & 0o777) == "0o700"
    store.write("tune/experiment_state-1.json", b"{}")
    store.write("tune/searcher-state.pkl", b"searcher")
    store.write("tune/train_trial_1/checkpoint_000000/checkpoint.pt", b"weights")
    first = store.local
    store.close()
    assert not first.exists()

    again = SessionStore(uri)
    local, experiment_files = again.pull_session()
    assert local != first and (local / STATE_FILE).read_bytes() == b"state"
    assert sorted(experiment_files) == ["experiment_state-1.json", "searcher-state.pkl"]  # not the trials' folders
    (local / "tune" / "searcher-state.pkl").write_bytes(b"merged")
    (local / "tune" / "experiment_state-1.json").unlink()
    again.push_experiment(experiment_files)
    assert again.read("tune/searcher-state.pkl") == b"merged" and again.read("tune/experiment_state-1.json") is None
    (local / SUMMARY_FILE).unlink()
    again.push(SUMMARY_FILE)  # a file gone from the working copy is gone from the store
    assert again.read(SUMMARY_FILE) is None and again.is_session()
    again.close()


def test_an_object_larger_than_any_session_file_is_not_read(experiment):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    store.write(SUMMARY_FILE, b"x" * 2048)
    with pytest.raises(SessionError, match="larger than any session file|more than any session file"):
        store.read(SUMMARY_FILE, limit=1024)


def test_lease_is_exclusive_taken_over_only_when_stale_and_released_only_by_its_owner(experiment):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    first = StoreLease(store, heartbeat_s=None)
    first.acquire()
    assert read_lease(store)["pid"] == os.getpid()
    with pytest.raises(SessionError, match="is running"):
        StoreLease(store, heartbeat_s=None).acquire()  # live: this process, this host

    dead = new_record(None)
    dead.update(pid=2**31 - 2, host="elsewhere", heartbeat=time.time() - 3600)  # another host, heartbeat an hour old
    store.write(LOCK_FILE, json.dumps(dead).encode())
    first.release()  # not its record any more: left alone
    assert read_lease(store)["host"] == "elsewhere"
    second = StoreLease(store, heartbeat_s=None)
    second.acquire()  # a stale record is taken over
    assert read_lease(store)["token"] == second._record["token"]
    second.release()
    assert read_lease(store) is None


def test_two_drivers_racing_for_a_stale_lease_one_wins(experiment):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    dead = new_record(None)
    dead.update(host="elsewhere", heartbeat=time.time() - 3600)
    store.write(LOCK_FILE, json.dumps(dead).encode())
    first, second = StoreLease(store, heartbeat_s=None), StoreLease(store, heartbeat_s=None)
    real_put = None

    def racing_put(records):
        nonlocal real_put
        real_put = records.put

        def put(data, etag):  # the other driver writes its record between this one's read and write
            records.put = real_put
            second.acquire()
            return real_put(data, etag)

        records.put = put

    import lightning_bohb.session.store_lease as store_lease

    original = store_lease._S3Records.__init__

    def init(self, the_store):
        original(self, the_store)
        if not hasattr(first, "_raced"):
            first._raced = True
            racing_put(self)

    store_lease._S3Records.__init__ = init
    try:
        with pytest.raises(SessionError, match="just taken by another driver"):
            first.acquire()
    finally:
        store_lease._S3Records.__init__ = original
    assert second.held and read_lease(store)["token"] == second._record["token"]
    second.release()


def test_a_forced_takeover_is_noticed_by_the_old_lease_at_its_next_beat(experiment, caplog):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    old = StoreLease(store, heartbeat_s=1.0)
    old.acquire()
    new = StoreLease(store, heartbeat_s=None)
    with caplog.at_level(logging.WARNING):
        new.acquire(force=True)
        assert new.broken["token"] == old._record["token"]
        ended = old._beats.join(timeout=10)  # the beat finds another record and stops
    assert ended
    assert "was taken over" in caplog.text
    assert read_lease(store)["token"] == new._record["token"]
    new.release()
    old.release()


def test_commands_take_a_uri(tmp_path, experiment, capsys):
    local = make_session(tmp_path, status="PAUSED")
    uri = join_uri(experiment, "exp", local.name)
    store = _upload(local, uri)
    store.write(STATE_FILE, b"not read by these commands")
    store.write("best_config.yaml", b"model:\n  lr: 0.01\n")

    assert main(["status", uri]) == 0
    out = capsys.readouterr().out
    assert f"({uri})" in out and f"Resume with: lightning-bohb resume {uri}" in out.replace("python -m lightning_bohb", "lightning-bohb")
    assert f"Best config: {uri}/best_config.yaml" in out
    assert main(["list", experiment]) == 0
    out = capsys.readouterr().out
    assert f"exp/{local.name}" in out and "PAUSED" in out
    assert find_store_sessions(experiment) == [uri]
    assert main(["export-best", uri]) == 0
    assert "lr: 0.01" in capsys.readouterr().out
    assert main(["pause", uri]) == 1
    assert "is not running (status: PAUSED)" in capsys.readouterr().err
    assert main(["status", join_uri(experiment, "exp", "session_none")]) == 1
    assert "No session at" in capsys.readouterr().err
    assert main(["trial", "pause", uri, "t_00000"]) == 1
    assert "not on object storage" in capsys.readouterr().err

    assert main(["clean", experiment, "--older-than", "1d", "--dry-run"]) == 0
    assert f"would remove {uri}" in capsys.readouterr().out
    lease = StoreLease(store, heartbeat_s=None)
    lease.acquire()  # a running driver's lease: clean keeps the session
    assert main(["clean", experiment, "--older-than", "1d"]) == 0
    assert "Removed 0 sessions; kept 1." in capsys.readouterr().out
    lease.release()
    other = join_uri(experiment, "other.txt")
    SessionStore(experiment).write("other.txt", b"not a session")
    assert main(["clean", experiment, "--older-than", "1d"]) == 0
    assert "Removed 1 session; kept 0." in capsys.readouterr().out
    assert not store.is_session() and SessionStore(experiment).read("other.txt") == b"not a session", other
    with pytest.raises(SessionError, match="No session at"):
        view_session(uri)


def test_a_planted_oversized_or_garbled_file_in_the_store_is_one_error_line(experiment, capsys):
    store = SessionStore(join_uri(experiment, "exp", "session_big"))
    store.write(SUMMARY_FILE, b"x" * (9 << 20))
    assert main(["status", store.uri]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "more than any session file" in err and len(err.strip().splitlines()) == 1
    store.write(SUMMARY_FILE, b"status: [unclosed")
    store.write(LOCK_FILE, b"\x00garbage")
    assert main(["status", store.uri]) == 1
    assert capsys.readouterr().err.startswith("error:")
    lease = StoreLease(store, heartbeat_s=None)
    lease.acquire()  # a garbled owner record is no owner
    lease.release()


def test_pause_within_through_ray_reaches_a_driver_whose_session_is_in_the_store(experiment):
    from lightning_bohb.session.runner import TuneSession
    from lightning_bohb.utils.layout import PAUSE_WITHIN_FILE

    session = TuneSession("exp", experiment_dir=experiment, session_id="within", grace_period=3600)
    deadline = time.time() + 60
    session.backend.store.write(PAUSE_WITHIN_FILE, json.dumps({"deadline": deadline}).encode())  # what `pause --within 60s` puts
    try:
        session._on_remote_request("pause")
        assert session.pause.pause_pending and session.pause.deadline == pytest.approx(deadline)
        assert session.backend.store.read(PAUSE_WITHIN_FILE) is None  # taken: never applied twice
        assert session.location == join_uri(experiment, "exp", "session_within")
        assert f"resume {session.location}" in session.resume_command
    finally:
        session.pause.detach()
        session.close()


# -- partitions and lost replies against the real S3 server (issue 25, item 2) ------------------------
class FaultyS3:
    """A driver's S3 client with faults injected: its network cut on demand (every request fails as an
    unreachable endpoint), or the reply of its next PUT lost (the store applied it; the client's retry,
    sent with the same condition, then fails it: 412). Every request it sends is recorded."""

    lose_first_reply = False

    def __init__(self, client):
        self.client = client
        self.cut = threading.Event()
        self.lose_next_reply = self.lose_first_reply
        self.calls = []

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if name == "exceptions" or not callable(attribute):
            return attribute

        def call(**kwargs):
            from botocore.exceptions import EndpointConnectionError

            self.calls.append((name, kwargs))
            if self.cut.is_set():
                raise EndpointConnectionError(endpoint_url=self.client.meta.endpoint_url)
            if name == "put_object" and self.lose_next_reply:
                self.lose_next_reply = False
                attribute(**kwargs)  # applied by the store, its reply lost...
            return attribute(**kwargs)  # ...and retried by the client

        return call


@pytest.fixture
def faulty(monkeypatch):
    """The `FaultyS3` client of each lease taken from now on, in order."""
    import lightning_bohb.session.store_lease as store_lease

    clients = []
    original = store_lease._S3Records.__init__

    def init(self, store):
        original(self, store)
        self.client = FaultyS3(self.client)
        clients.append(self.client)

    monkeypatch.setattr(store_lease._S3Records, "__init__", init)
    return clients


def test_a_driver_cut_off_from_the_store_stops_before_another_host_may_take_its_lease(experiment, faulty, monkeypatch):
    import lightning_bohb.session.store_lease as store_lease

    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    monkeypatch.setattr(store_lease, "new_record", lambda beat: {**new_record(beat), "host": "host-a"})
    first = StoreLease(store, heartbeat_s=0.3)  # a driver on host-a
    first.acquire()
    monkeypatch.undo()
    faulty[0].cut.set()  # the partition: host-a cannot reach the store
    second = StoreLease(store, heartbeat_s=None)  # a driver here, resuming without --force
    while True:
        try:
            second.acquire()
            break
        except SessionError as err:
            assert "is running on host host-a" in str(err)
            assert first.loss() is None or "could not be renewed" in first.loss()
        time.sleep(0.05)
    # The moment the second driver owns the session, the first has stopped (one beat before).
    assert first.loss() is not None and "could not be renewed" in first.loss()
    faulty[0].cut.clear()  # the partition heals: the first driver does not come back
    first._beats._thread.join(5)
    assert not first._beats._thread.is_alive() and first.loss() is not None
    first.release()
    assert read_lease(store)["token"] == second._record["token"]  # the new owner's record is left alone
    second.release()


def test_a_renewal_whose_reply_was_lost_counts_as_renewed(experiment, faulty):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    lease = StoreLease(store, heartbeat_s=1.0)
    lease.acquire()
    (faulty_put,) = faulty
    faulty_put.lose_next_reply = True  # the next beat's PUT is applied, its reply lost, its retry gets 412
    puts = lambda: sum(name == "put_object" for name, _ in faulty_put.calls)  # noqa: E731
    before = puts()
    deadline = time.monotonic() + 30
    while puts() < before + 4 and time.monotonic() < deadline:  # the lost reply (2 puts), then more beats
        time.sleep(0.05)
    assert puts() >= before + 4 and lease.loss() is None  # not "taken over by itself": it beats on
    record = read_lease(store)
    assert record["token"] == lease._record["token"] and time.time() - record["heartbeat"] < 3
    lease.release()
    assert read_lease(store) is None


def test_a_lease_taken_whose_reply_was_lost_is_held(experiment, faulty, monkeypatch):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    monkeypatch.setattr(FaultyS3, "lose_first_reply", True)
    lease = StoreLease(store, heartbeat_s=None)
    lease.acquire()  # its If-None-Match PUT applied, the retry refused: the record there is this lease's
    assert lease.held and read_lease(store)["token"] == lease._record["token"]
    assert [name for name, _ in faulty[0].calls] == ["get_object", "put_object", "get_object"]  # read back: its own
    lease.release()


def test_a_lease_is_released_only_if_its_record_is_still_the_one_read(experiment, faulty):
    store = SessionStore(join_uri(experiment, "exp", "session_1"))
    lease = StoreLease(store, heartbeat_s=None)
    lease.acquire()
    _, etag = lease._records.get()
    lease.release()
    name, delete = faulty[0].calls[-1]
    assert name == "delete_object" and delete["IfMatch"] == etag  # a conditional delete: not a record written since
    assert read_lease(store) is None
