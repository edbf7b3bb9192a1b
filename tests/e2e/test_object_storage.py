"""A session in object storage: a real S3 endpoint (moto's server, on 127.0.0.1, started and stopped here).

On a 2-node local Ray cluster with token authentication, the search is started in one folder, paused from a
process that is only a Ray client, its folder deleted, and resumed from a fresh process in another folder with
the printed command: every epoch trained once, per-epoch metrics bitwise equal to an uninterrupted run. A driver
killed with SIGKILL leaves a session in the store that resumes with the same metrics. A driver cut off from the
store (a TCP proxy between them, cut mid-search) stops and exits 4 before another takes the session, which then
resumes with the same metrics; nothing the cut-off driver sent reaches the store after the new owner took it."""

import json
import posixpath
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import pyarrow.fs
import pytest

from e2e_support import (
    ScriptRun,
    epoch_end_counts,
    kill_9_with_its_ray,
    paused_exit,
    resume_argv,
    script_env,
    start_search,
    trial_histories,
    wait_until,
    write_config,
)
from lightning_bohb.exceptions import EXIT_LOCK_LOST
from lightning_bohb.session.lock import HEARTBEAT_S, STALE_AFTER_BEATS

BUCKET = "lbohb-sessions"


@pytest.fixture
def s3_endpoint(tmp_path, monkeypatch):
    """moto's standalone S3 server on a free loopback port; the AWS environment points at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "moto.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(endpoint) or server.poll() is not None, 60, "the S3 endpoint")
        assert server.poll() is None, (tmp_path / "moto.log").read_text()
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _answers(endpoint):
    try:
        urllib.request.urlopen(endpoint, timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def token_cluster(s3_endpoint, token_cluster):
    """conftest's 2-node cluster, started after the AWS environment is set, so its workers reach the store."""
    yield token_cluster


def _store():
    filesystem, _ = pyarrow.fs.FileSystem.from_uri(f"s3://{BUCKET}")
    return filesystem


def _session_uri():
    infos = _store().get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/exp/digits", allow_not_found=True))
    sessions = [info.path for info in infos if posixpath.basename(info.path).startswith("session_")]
    return f"s3://{sessions[0]}" if len(sessions) == 1 else None


def _checkpointed(uri, name="checkpoint_000000"):
    selector = pyarrow.fs.FileSelector(uri[len("s3://") :] + "/tune", allow_not_found=True, recursive=True)
    return any(posixpath.basename(info.path) == name for info in _store().get_file_info(selector))


def _store_histories(uri, local):
    """The trials' result.json files of the session in the store, copied into ``local``, as `trial_histories` reads them."""
    filesystem = _store()
    for info in filesystem.get_file_info(pyarrow.fs.FileSelector(uri[len("s3://") :] + "/tune", recursive=True)):
        if posixpath.basename(info.path) == "result.json":
            target = local / posixpath.basename(posixpath.dirname(info.path))
            target.mkdir(parents=True)
            with filesystem.open_input_stream(info.path) as stream:
                (target / "result.json").write_bytes(stream.read())
    return trial_histories(local)


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lightning_bohb", *args], cwd=cwd, env=script_env(), capture_output=True, text=True, timeout=300
    )


def test_a_session_in_s3_pauses_on_a_cluster_and_resumes_elsewhere_exactly(tmp_path, uninterrupted, token_cluster):
    records = tmp_path / "records"
    records.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    args = ["--max-epochs", "4"]
    expected = uninterrupted  # the same seeded search in a local folder, never paused

    config = write_config(first, records, min_epoch_seconds=1.0)
    driver = start_search(first, ["--base-config", str(config), *args], experiment_dir=f"s3://{BUCKET}/exp")
    uri = wait_until(_session_uri, 240, "the session in the store")
    wait_until(lambda: _checkpointed(uri), 240, "a first checkpoint in the store")
    status = _cli("status", uri, cwd=tmp_path)
    assert status.returncode == 0 and "RUNNING" in status.stdout, status.stdout + status.stderr
    assert f"({uri})" in status.stdout and "(alive," in status.stdout, status.stdout

    paused = _cli("pause", uri, "--timeout", "180", cwd=tmp_path)  # a Ray client: through the control actor
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert "through Ray" in paused.stdout, paused.stdout
    output = paused_exit(driver)
    argv = resume_argv(output)
    assert uri in argv, argv
    nodes = {json.loads(line)["node"] for path in records.glob("*.jsonl") for line in path.open()}
    assert len(nodes) == 2, "the two trials should have run on different nodes"
    trained = epoch_end_counts(records)
    assert trained and len(trained) < 8, "the pause should come before the end"

    shutil.rmtree(first)  # nothing a resume needs stays on the driver's disk
    listed = _cli("list", f"s3://{BUCKET}/exp", cwd=tmp_path)
    assert "PAUSED" in listed.stdout, listed.stdout + listed.stderr
    again = ScriptRun(argv, cwd=second)
    assert again.wait() == 0, again.output[-3000:]

    assert _store_histories(uri, tmp_path / "histories") == expected
    counts = epoch_end_counts(records)
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n != 1}
    assert len(counts) == sum(len(h) for h in expected.values())
    best = _cli("export-best", uri, cwd=tmp_path)
    assert best.returncode == 0 and "model:" in best.stdout, best.stdout + best.stderr


def test_a_session_in_s3_resumes_after_a_kill_9_of_its_driver(tmp_path, uninterrupted, s3_endpoint):
    records, first, second = tmp_path / "records", tmp_path / "first", tmp_path / "second"
    for folder in (records, first, second):
        folder.mkdir()
    config = write_config(first, records)
    run = start_search(first, ["--base-config", str(config)], experiment_dir=f"s3://{BUCKET}/exp")
    uri = wait_until(_session_uri, 240, "the session in the store")
    wait_until(lambda: _checkpointed(uri, "checkpoint_000001") or run.proc.poll() is not None, 240, "a second checkpoint in the store")
    kill_9_with_its_ray(run)
    shutil.rmtree(first)
    status = _cli("status", uri, cwd=tmp_path)
    assert "RUNNING (stale: driver gone)" in status.stdout, status.stdout + status.stderr

    resumed = _cli("resume", uri, cwd=second)  # the dead driver's lease is taken over
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    latest = {config: sorted({row[0]: row for row in rows}.values()) for config, rows in _store_histories(uri, tmp_path / "h").items()}
    assert latest == uninterrupted
    repeated = [trial for (trial, _), count in epoch_end_counts(records).items() if count > 1]
    assert len(repeated) == len(set(repeated))  # at most the epoch in flight, once per trial


class _CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server, for a driver that reaches the store only through it.

    It logs when each chunk a client sends passes (`sent`: ``(time.time(), first bytes)``). `cut` is a network
    partition: its live connections are closed and new ones refused (its port closed) until `heal` opens the
    same port again. Each thread ends when its socket is closed.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.sent = []
        self.cut_at = None
        self._refusing = False
        self._mutex = threading.Lock()
        self._sockets = set()
        self._threads = []
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]

    def _listen(self, port):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        self._start(self._accept, listener)
        return listener

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the port was closed: cut
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._mutex:
                if self._refusing:  # accepted in the instant of the cut
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            self._start(self._pump, client, upstream, True)
            self._start(self._pump, upstream, client, False)

    def _pump(self, source, sink, request):
        try:
            while data := source.recv(1 << 16):
                if request:
                    self.sent.append((time.time(), data[:60]))
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # closed by the other pump or by the cut
            pass
        if not request:  # the reply ends last: the connection is done
            self._close(source, sink)

    def _close(self, *sockets):
        with self._mutex:
            for sock in sockets:
                self._sockets.discard(sock)
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it (close alone does not)
                except OSError:
                    pass
                sock.close()

    def cut(self):
        with self._mutex:
            self._refusing = True
        self._close(self._listener, *list(self._sockets))
        self.cut_at = time.time()  # after every connection is closed: nothing passes from here on

    def heal(self):
        self._refusing = False
        self._listener = self._listen(self.port)

    def close(self):
        self._close(self._listener, *list(self._sockets))
        for thread in self._threads:
            thread.join(timeout=10)


def _lease(uri):
    """The session's owner record in the store (read directly, not through the proxy), or None."""
    import boto3

    bucket, prefix = uri[len("s3://") :].split("/", 1)
    client = boto3.client("s3")
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}/session.lock")["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def _listing(uri):
    """``{path: (size, mtime)}`` of every object of the session in the store."""
    selector = pyarrow.fs.FileSelector(uri[len("s3://") :], recursive=True)
    return {info.path: (info.size, info.mtime) for info in _store().get_file_info(selector) if info.type == pyarrow.fs.FileType.File}


def test_a_driver_cut_off_from_s3_stops_and_another_resumes_the_session_exactly(tmp_path, uninterrupted, s3_endpoint, monkeypatch):
    import psutil

    records, first, second = tmp_path / "records", tmp_path / "first", tmp_path / "second"
    for folder in (records, first, second):
        folder.mkdir()
    proxy = _CuttableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")  # driver A, its Ray and trials
        # Epochs of half a beat: the 3 after the first checkpoint outlast the wait for a renewal below.
        config = write_config(first, records, min_epoch_seconds=HEARTBEAT_S / 2)
        driver = start_search(first, ["--base-config", str(config)], experiment_dir=f"s3://{BUCKET}/exp")
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # everything else reaches the store directly
        uri = wait_until(_session_uri, 240, "the session in the store")
        wait_until(lambda: _checkpointed(uri) or driver.proc.poll() is not None, 240, "a first checkpoint")
        lease = _lease(uri)
        assert driver.proc.poll() is None and lease["pid"] == driver.proc.pid, driver.output[-3000:]
        its_processes = psutil.Process(driver.proc.pid).children(recursive=True)  # its Ray, and its trials on it
        ended = []
        threading.Thread(target=lambda: ended.append((driver.proc.wait(), time.time())), daemon=True).start()

        # Cut just after A renewed its lease: the longest it may go on (its trials fail on their next checkpoint first).
        wait_until(lambda: _lease(uri)["heartbeat"] != lease["heartbeat"], 3 * HEARTBEAT_S, "a renewal of A's lease", 0.05)
        proxy.cut()
        assert driver.proc.poll() is None, driver.output[-3000:]  # cut mid-search
        # Resumes on the direct endpoint, without --force, until one takes the session. On this host A's record is live
        # while its process is (the heartbeat decides for another host: tests/unit/test_session_store.py).
        refused = []
        while True:
            assert len(refused) < 60, f"no resume took the session: {refused[-1]}\n{driver.output[-3000:]}"
            a_running = driver.proc.poll() is None
            resumed = ScriptRun([sys.executable, "-m", "lightning_bohb", "resume", uri], cwd=second)
            if _took_the_session(resumed, uri):
                break
            assert resumed.wait() == 1 and a_running, resumed.output[-3000:]  # refused only while A still runs
            assert f"is running (pid {driver.proc.pid}" in resumed.output, resumed.output[-3000:]
            refused.append(resumed.output)
            try:
                driver.proc.wait(timeout=2)  # the next try once A is gone, or in 2 s
            except subprocess.TimeoutExpired:
                pass
        taken_since = _lease(uri)["since"]
        proxy.heal()  # from here, anything A or its processes still send would reach the store

        ((code, ended_at),) = wait_until(lambda: ended, 30, "A's exit")
        assert code == EXIT_LOCK_LOST, driver.output[-3000:]
        errors = [line for line in driver.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "could not be renewed" in errors[0], driver.output[-3000:]
        assert "can still be resumed" not in driver.output  # another driver owns it now: no resume command offered
        # It stopped within its renewal interval, plus its exit (Ray's shutdown), on a loaded 2-core machine.
        assert ended_at - proxy.cut_at < STALE_AFTER_BEATS * HEARTBEAT_S + 30, ended_at - proxy.cut_at
        wait_until(lambda: not any(_alive(process) for process in its_processes), 60, "the end of A's Ray and trials")

        assert resumed.wait() == 0, resumed.output[-3000:]
        after = _listing(uri)
        # Nothing A sent passed after the cut (the proxy open again for B's whole run), all of it before B took the session.
        assert proxy.sent and max(at for at, _ in proxy.sent) < min(proxy.cut_at, taken_since)
        latest = {config: sorted({row[0]: row for row in rows}.values()) for config, rows in _store_histories(uri, tmp_path / "h").items()}
        assert latest == uninterrupted
        # Trained again: at most the epoch in flight at the cut and one whose checkpoint the cut kept from A's snapshot.
        again = [trial for (trial, _), count in epoch_end_counts(records).items() if count == 2]
        assert max(epoch_end_counts(records).values()) <= 2 and max(Counter(again).values(), default=0) <= 2, again
        proxy.close()
        assert _listing(uri) == after
    finally:
        proxy.close()


def _took_the_session(resume, uri):
    """Whether a running ``resume`` holds the session's lease; False once it ended without it (refused)."""
    wait_until(lambda: resume.proc.poll() is not None or (_lease(uri) or {}).get("pid") == resume.proc.pid, 120, "a resume's answer", 0.2)
    return resume.proc.poll() is None


def _alive(process):
    try:
        return process.status() != "zombie"
    except Exception:  # psutil.NoSuchProcess: gone
        return False
