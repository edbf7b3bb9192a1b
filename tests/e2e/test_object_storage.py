"""A session in object storage: a real S3 endpoint (moto's server, on 127.0.0.1, started and stopped here).

On a 2-node local Ray cluster with token authentication, the search is started in one folder, paused from a
process that is only a Ray client, its folder deleted, and resumed from a fresh process in another folder with
the printed command: every epoch trained once, per-epoch metrics bitwise equal to an uninterrupted run. A driver
killed with SIGKILL leaves a session in the store that resumes with the same metrics."""

import json
import posixpath
import shutil
import socket
import subprocess
import sys
import urllib.request

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
