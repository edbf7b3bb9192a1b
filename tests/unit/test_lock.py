"""The session lock (one owner, always; a lock that expires; release of its own record only) and the
session folder it guards (never created through a symbolic link)."""

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session import lock, owner_record
from lightning_bohb.session.lock import SessionLock
from lightning_bohb.session.owner_record import lock_is_live, read_lock
from lightning_bohb.utils import files
from lightning_bohb.utils.layout import LOCK_FILE

DEAD_PID = 2**22 + 12345  # above Linux's pid_max: never a live process


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def write_record(session, **record):
    (session / LOCK_FILE).write_text(json.dumps(record))


# -- one owner ---------------------------------------------------------------------------------
RACER = textwrap.dedent(
    """
    import os, sys, time
    from lightning_bohb.exceptions import SessionError
    from lightning_bohb.session.lock import SessionLock
    session, signals, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def wait_for(name):
        while not os.path.exists(os.path.join(signals, name)):
            time.sleep(0.002)

    print("ready", flush=True)
    for round in range(rounds):
        wait_for(f"go{round}")
        lock = SessionLock(session)
        try:
            lock.acquire()
        except SessionError as err:
            print("refused", err, flush=True)
            continue
        print("won", flush=True)
        wait_for(f"done{round}")  # holds the lock until every racer has tried
        lock.release()
        print("released", flush=True)
    """
)


def test_only_one_of_twenty_processes_racing_over_a_stale_lock_gets_it(tmp_path):
    """Ten rounds of 20 processes taking over a killed driver's lock at the same moment."""
    session, signals = tmp_path / "session", tmp_path / "signals"
    session.mkdir()
    signals.mkdir()
    rounds = 10
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(session), str(signals), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(20)
    ]
    try:
        assert all(racer.stdout.readline() == "ready\n" for racer in racers)
        outcomes = []
        for round in range(rounds):
            write_record(session, pid=DEAD_PID, host=socket.gethostname(), since=time.time() - 60)  # a killed driver's
            (signals / f"go{round}").touch()
            lines = [racer.stdout.readline() for racer in racers]
            winners = [racer for racer, line in zip(racers, lines, strict=True) if line.startswith("won")]
            (signals / f"done{round}").touch()
            released = [winner.stdout.readline() for winner in winners]
            outcomes.append(([winner.pid for winner in winners], lines, released, (session / LOCK_FILE).exists()))
        assert [len(winners) for winners, *_ in outcomes] == [1] * rounds, outcomes
        for (winner,), lines, released, record_left in outcomes:
            assert released == ["released\n"] and not record_left  # the winner removed its record, and only it
            for line in lines:
                if not line.startswith("won"):
                    assert f"is already running (pid {winner} on host" in line, line
                    assert f"lightning-bohb pause {session}" in line
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()


def test_a_refused_driver_touches_nothing_of_the_owner(tmp_path):
    owner = SessionLock(tmp_path)
    owner.acquire()
    in_flight = files.AtomicFile(tmp_path / "result.json")  # the owner is writing
    in_flight.write(b'{"epoch": 1')
    record = (tmp_path / LOCK_FILE).read_bytes()
    try:
        with pytest.raises(SessionError, match=f"already running \\(pid {os.getpid()} on host"):
            SessionLock(tmp_path).acquire(force=True)  # force never breaks a lock a live process holds
        assert os.path.exists(in_flight._tmp)
        assert (tmp_path / LOCK_FILE).read_bytes() == record
    finally:
        in_flight.close()
        owner.release()


def test_release_removes_only_its_own_record(tmp_path):
    first = SessionLock(tmp_path, heartbeat_s=None)
    first.acquire()
    taken_over = {"pid": 4242, "host": "elsewhere.example", "since": time.time(), "heartbeat": time.time(), "token": "theirs"}
    write_record(tmp_path, **taken_over)  # as a `resume --force` on another host writes it
    first.release()
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == taken_over


def test_the_record_says_who_holds_the_lock(tmp_path):
    held = SessionLock(tmp_path)
    held.acquire()
    try:
        record = read_lock(tmp_path)
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["start"] == owner_record.process_start(os.getpid()) and record["start"]
        assert record["cmdline"] == owner_record.process_cmdline(os.getpid()) and record["cmdline"]
        assert abs(record["since"] - time.time()) < 60 and record["heartbeat"] >= record["since"]
        assert ((tmp_path / LOCK_FILE).stat().st_mode & 0o777) == 0o600
        assert ((tmp_path / lock.OS_LOCK_FILE).stat().st_mode & 0o777) == 0o600
        assert lock_is_live(record) and owner_record.driver_identity_problem(record) is None
    finally:
        held.release()
    assert read_lock(tmp_path) is None


def test_a_symlinked_lock_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    session = tmp_path / "session"
    session.mkdir()
    (session / lock.OS_LOCK_FILE).symlink_to(target)
    with pytest.raises(SessionError, match="it is a symbolic link"):
        SessionLock(session).acquire()
    assert target.read_text() == "keep"


# -- locks that expire ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"", b'{"pid": 12', b"[1, 2]", b'{"pid": "abc", "host": "x"}', b'{"pid": true, "host": "x"}', b"\xff\xfe\x00", b"null"],
    ids=["empty", "truncated", "list", "pid-string", "pid-bool", "binary", "null"],
)
def test_an_empty_truncated_or_garbled_lock_is_stale_and_taken_over(tmp_path, content):
    (tmp_path / LOCK_FILE).write_bytes(content)
    taken = SessionLock(tmp_path, heartbeat_s=None)
    taken.acquire()
    assert taken.held and read_lock(tmp_path)["pid"] == os.getpid()
    taken.release()
    (tmp_path / LOCK_FILE).write_bytes(content)
    record = read_lock(tmp_path)
    assert record["invalid"] and not lock_is_live(record)


def test_a_lock_from_another_host_is_live_while_its_heartbeat_is_fresh(tmp_path):
    now = time.time()
    write_record(tmp_path, pid=4242, host="elsewhere.example", since=now - 3600, heartbeat=now - 4, heartbeat_s=10.0)
    with pytest.raises(SessionError) as refused:
        SessionLock(tmp_path).acquire()
    message = str(refused.value)
    assert "is running on host elsewhere.example" in message and "heartbeat 4 s ago" in message
    assert f"lightning-bohb pause {tmp_path}" in message and f"lightning-bohb resume --force {tmp_path}" in message

    write_record(tmp_path, pid=4242, host="elsewhere.example", since=now - 3600, heartbeat=now - 31, heartbeat_s=10.0)
    assert not lock_is_live(read_lock(tmp_path))  # 3 beats missed: the driver is gone
    taken = SessionLock(tmp_path, heartbeat_s=None)
    taken.acquire()
    assert taken.held and taken.broken is None
    taken.release()


def test_a_lock_from_a_machine_of_the_same_name_is_live_while_its_heartbeat_is_fresh(tmp_path):
    """Another boot id under this host name: another machine named alike (or this one before a reboot)."""
    now = time.time()
    other_boot = dict(pid=DEAD_PID, host=socket.gethostname(), boot_id="another-boot", since=now - 3600, heartbeat_s=10.0)
    write_record(tmp_path, **other_boot, heartbeat=now - 4)
    assert owner_record.boot_id() and lock_is_live(read_lock(tmp_path))  # its pid means nothing here; its heartbeat is fresh
    with pytest.raises(SessionError, match="is locked by a live process"):
        SessionLock(tmp_path, heartbeat_s=None).acquire()
    write_record(tmp_path, **other_boot, heartbeat=now - 31)
    assert not lock_is_live(read_lock(tmp_path))  # 3 beats missed: gone


def test_force_breaks_a_live_looking_lock_after_saying_whose_it_was(tmp_path, caplog):
    write_record(tmp_path, pid=4242, host="elsewhere.example", since=time.time(), heartbeat=time.time(), cmdline=["python", "optimize.py"])
    forced = SessionLock(tmp_path, heartbeat_s=None)
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        forced.acquire(force=True)
    assert forced.held and forced.broken["pid"] == 4242
    assert "Breaking the lock" in caplog.text and "pid 4242 on host elsewhere.example, running 'python optimize.py'" in caplog.text
    assert read_lock(tmp_path)["pid"] == os.getpid()
    forced.release()


def test_the_driver_renews_its_heartbeat(tmp_path):
    held = SessionLock(tmp_path, heartbeat_s=0.5)  # short beats on a loaded machine would be lost (2 missed beats)
    held.acquire()
    first = read_lock(tmp_path)["heartbeat"]
    try:
        assert wait_until(lambda: read_lock(tmp_path)["heartbeat"] > first), "no heartbeat"
        assert lock_is_live(read_lock(tmp_path))
    finally:
        held.release()
    assert read_lock(tmp_path) is None


def test_on_this_host_a_reused_pid_is_not_the_owner(tmp_path):
    alive = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    assert lock_is_live(owner_record._checked({**alive, "start": owner_record.process_start(os.getpid())}))
    assert not lock_is_live(owner_record._checked({**alive, "start": "ticks:1"}))  # another process had this pid
    assert not lock_is_live(owner_record._checked({**alive, "boot_id": "another-boot", "heartbeat": time.time() - 3600}))  # before a reboot
    assert not lock_is_live(owner_record._checked({**alive, "pid": DEAD_PID}))
    assert "the pid was reused" in owner_record.driver_identity_problem(owner_record._checked({**alive, "start": "ticks:1", "cmdline": []}))


# -- the session folder --------------------------------------------------------------------------
def test_a_session_folder_is_never_created_through_a_symbolic_link(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "session_x").symlink_to(target)
    with pytest.raises(OSError):
        files.make_private_dir(tmp_path / "exp" / "session_x")
    (tmp_path / "exp" / "session_dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OSError):
        files.make_private_dir(tmp_path / "exp" / "session_dangling")
    assert not (tmp_path / "nowhere").exists()
    os.chmod(target, 0o755)
    session = files.make_private_dir(tmp_path / "exp" / "session_y")
    assert (session.stat().st_mode & 0o777) == 0o700
    assert (target.stat().st_mode & 0o777) == 0o755  # the link's target was not touched


def test_a_new_session_refuses_a_symlinked_session_folder(tmp_path):
    from lightning_bohb.session.runner import TuneSession

    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "session_x").symlink_to(target)
    session = TuneSession("exp", experiment_dir=tmp_path, session_id="x")
    with pytest.raises(SessionError, match="Cannot create the session folder .*session_x: it is a symbolic link"):
        session._create(_FakeOptimizer(tmp_path))
    assert list(target.iterdir()) == []


class _FakeOptimizer:
    """Just what `TuneSession._create` reads of a `ConfigDrivenOptimizer`."""

    def __init__(self, experiment_dir):
        from lightning_bohb.core.optimization_config import OptimizationConfig

        self.optimization_config = OptimizationConfig(
            max_epochs=1, num_samples=1, experiment_name="exp", experiment_dir=str(experiment_dir)
        )
        self.search_space = self.strategy = None
        self.base_config, self.base_config_source = {}, None


# -- a lost lock stops its driver (issue 25, item 2) -----------------------------------------------
def test_a_driver_whose_lock_was_taken_over_writes_nothing_more_and_stops(tmp_path):
    from lightning_bohb.exceptions import SessionLockLost
    from lightning_bohb.session.runner import TuneSession

    session_dir = tmp_path / "exp" / "session_x"
    session_dir.mkdir(parents=True)
    held = SessionLock(session_dir, heartbeat_s=0.5)
    held.acquire()
    session = TuneSession(experiment_dir=tmp_path, session_id="x")
    session._session_dir, session._running_lock = session_dir, held
    session._check_owned()  # held: the run goes on
    # `resume --force` on another host (or a filesystem whose locks do not span hosts) took the session.
    write_record(session_dir, pid=DEAD_PID, host="other-host", heartbeat=time.time(), token="theirs")
    assert wait_until(lambda: held.loss() is not None)
    before = {path: path.stat().st_mtime_ns for path in session_dir.rglob("*")}
    with pytest.raises(SessionLockLost, match="This driver stopped: the lock of session .* was taken over: pid .* on host other-host"):
        session._check_owned()
    session._save()
    session._write_summary()
    assert {path: path.stat().st_mtime_ns for path in session_dir.rglob("*")} == before  # nothing written
    # What Tune raises when a callback's ownership check fired (it wraps it in its own TuneError) is the loss.
    from ray.tune.error import TuneError

    assert isinstance(session._as_lock_loss(TuneError("callback failed")), SessionLockLost)
    lost = SessionLockLost("lost")
    assert session._as_lock_loss(lost) is lost
    assert held._beats._thread.join(5) is None and not held._beats._thread.is_alive()  # its heartbeat ended
    held.release()
    assert read_lock(session_dir)["token"] == "theirs"  # the new owner's record is left alone


def test_a_lock_that_cannot_be_renewed_for_two_beats_is_lost_before_others_may_take_it(tmp_path, monkeypatch):
    session_dir = tmp_path / "session"
    session_dir.mkdir()
    held = SessionLock(session_dir, heartbeat_s=0.2)
    held.acquire()

    def unreachable(self):
        raise OSError(5, "Input/output error")  # the shared folder out of reach

    monkeypatch.setattr(SessionLock, "_write_record", unreachable)
    assert held.loss() is None
    assert wait_until(lambda: held.loss() is not None, timeout=10)
    record = read_lock(session_dir)
    age = time.time() - record["heartbeat"]
    assert age < owner_record.STALE_AFTER_BEATS * 0.2  # lost while the record still looks live elsewhere
    assert "could not be renewed" in held.loss()
    held._beats._thread.join(5)
    assert not held._beats._thread.is_alive()  # its beats ended: healed, the folder gets no more of them
    monkeypatch.undo()
    assert held.loss() is not None and read_lock(session_dir)["heartbeat"] == record["heartbeat"]
    held.release()


def test_confirming_the_lock_renews_it_now_or_waits_until_it_is_lost(tmp_path, monkeypatch):
    """Before a run's last writes: renewed at once when it can be; cut off, lost within the renewal interval
    (a driver whose trials ended on the outage stops as one that lost its session, not on a failed write)."""
    session_dir = tmp_path / "session"
    session_dir.mkdir()
    held = SessionLock(session_dir, heartbeat_s=0.5)
    held.acquire()
    before = read_lock(session_dir)["heartbeat"]
    assert held.loss(confirm=True) is None and read_lock(session_dir)["heartbeat"] > before  # renewed just now

    def unreachable(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(SessionLock, "_write_record", unreachable)
    asked = time.monotonic()
    why = held.loss(confirm=True)
    took = time.monotonic() - asked
    assert why is not None and "could not be renewed" in why, why
    assert lock.RENEW_WITHIN_BEATS * 0.5 - 0.1 < took < lock.STALE_AFTER_BEATS * 0.5, took  # it waited, and was lost in time
    assert held.loss() == why
    monkeypatch.undo()
    held.release()
    assert read_lock(session_dir) is None  # still its own record: removed


def test_the_console_exits_with_its_own_code_when_the_lock_is_lost(monkeypatch, capsys):
    from lightning_bohb.cli import main as console
    from lightning_bohb.exceptions import EXIT_LOCK_LOST, SessionLockLost

    def lost(args):
        raise SessionLockLost("This driver stopped: the lease of session s3://b/s was taken over: pid 7 on host h.")

    monkeypatch.setattr(console, "_dispatch", lost)
    assert console.main(["status", "x"]) == EXIT_LOCK_LOST == 4
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: This driver stopped: the lease of session s3://b/s was taken over: pid 7 on host h."
    ]


SUSPENDED_DRIVER = textwrap.dedent(
    """
    import sys, time
    from lightning_bohb.session.lock import SessionLock
    held = SessionLock(sys.argv[1], heartbeat_s=0.3)
    held.acquire()
    print("held", flush=True)
    sys.stdin.readline()  # continued (SIGCONT) and told to check
    print("loss:", held.loss(), flush=True)
    """
)


@pytest.mark.parametrize("taken", [False, True])
def test_a_driver_suspended_past_its_renewal_goes_on_only_if_its_record_is_still_its_own(tmp_path, taken):
    import signal

    driver = subprocess.Popen(
        [sys.executable, "-c", SUSPENDED_DRIVER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout.readline().strip() == "held"
        driver.send_signal(signal.SIGSTOP)  # Ctrl+Z, a laptop asleep: no beats for more than 2 of them
        mine = read_lock(tmp_path)
        assert wait_until(lambda: time.time() - mine["heartbeat"] > 1.5)
        if taken:  # meanwhile `resume --force` on another host
            write_record(tmp_path, pid=DEAD_PID, host="other-host", heartbeat=time.time(), token="theirs")
        driver.send_signal(signal.SIGCONT)
        out, _ = driver.communicate("check\n", timeout=60)
    finally:
        driver.kill()
    if taken:
        assert "loss: the lock of session" in out and "was taken over: pid" in out
    else:
        assert "loss: None" in out  # its own record still: renewed, and it goes on
