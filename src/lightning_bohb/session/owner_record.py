"""A session's owner record: who runs it (pid, host, boot id, process start time, command line, since, a
heartbeat, a token), written by its driver as JSON (``session.lock``, or the lease object of a stored
session), and how readers judge it: live or stale (`lock_is_live`), and described in one line.

On the same host, the pid must be alive and have the recorded start time (a reused pid is not the
driver); from another host, the heartbeat must be less than `STALE_AFTER_BEATS` beats old. An empty,
truncated or garbled record is stale. Holding the record is `lightning_bohb.session.lock`'s.
"""

from __future__ import annotations

import math
import os
import secrets
import shlex
import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lightning_bohb.utils.files import parse_json
from lightning_bohb.utils.layout import LOCK_FILE

HEARTBEAT_S = 10.0
"""How often a driver renews its record's heartbeat."""
STALE_AFTER_BEATS = 3
"""A record from another host is stale once its heartbeat is this many beats old."""
RENEW_WITHIN_BEATS = STALE_AFTER_BEATS - 1
"""A driver that could not renew its record for this many beats has lost it: it stops one beat before
another host may take the session over (clocks of the hosts assumed within a beat of each other)."""

_MAX_RECORD_BYTES = 64 * 1024

# -- the process that wrote a record -------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def boot_id() -> Optional[str]:
    """This boot of this machine (Linux): pids and start times from another boot mean nothing."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started, as an opaque string (equal only for the same process), or None.

    From ``/proc/<pid>/stat`` (clock ticks since boot); elsewhere from psutil when it is installed.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return "ticks:" + stat[stat.rindex(b")") + 2 :].split()[19].decode()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # /proc works: the process is gone
    except (OSError, ValueError, IndexError):
        return None
    try:
        import psutil

        return f"psutil:{psutil.Process(pid).create_time():.3f}"
    except Exception:  # psutil missing, or the process gone
        return None


def process_cmdline(pid: int) -> Optional[List[str]]:
    """Process ``pid``'s command line (from ``/proc``, else psutil), or None when unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
        return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
    except OSError:
        return None
    try:
        import psutil

        return list(psutil.Process(pid).cmdline())
    except Exception:
        return None


# -- reading a record ----------------------------------------------------------------------------
def read_lock(session_dir: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """The owner record of ``session_dir``, or ``None`` when there is none.

    Always a dict with the right types: an unreadable, truncated or garbled record comes back as
    ``{"pid": -1, "host": "?", "since": 0.0, "invalid": <why>}`` and is never live. Reading never
    follows a symbolic link, never blocks on a FIFO, and reads at most 64 KiB.
    """
    path = Path(session_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        return _invalid(f"cannot be read: {err.strerror or err}")
    try:
        if not _is_regular(fd):
            return _invalid("is not a regular file")
        raw = os.read(fd, _MAX_RECORD_BYTES + 1)
    except OSError as err:
        return _invalid(f"cannot be read: {err.strerror or err}")
    finally:
        os.close(fd)
    return parse_record(raw)


def parse_record(raw: bytes) -> Dict[str, Any]:
    """An owner record read as data (`read_lock`'s rules): always a dict with the right types."""
    if len(raw) > _MAX_RECORD_BYTES:
        return _invalid("is too large")
    try:
        record = parse_json(raw)
    except ValueError:  # UnicodeDecodeError and a nesting too deep too
        return _invalid("is empty or truncated" if len(raw) < 2 else "is not JSON")
    return _checked(record)


def new_record(heartbeat_s: Optional[float]) -> Dict[str, Any]:
    """The owner record of this process, taking a lock now."""
    now = time.time()
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "start": process_start(os.getpid()),
        "cmdline": process_cmdline(os.getpid()) or [],
        "since": now,
        "heartbeat": now,
        "heartbeat_s": float(heartbeat_s or HEARTBEAT_S),
        "token": secrets.token_hex(8),
    }


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _invalid(why: str) -> Dict[str, Any]:
    return {"pid": -1, "host": "?", "since": 0.0, "invalid": why}


def _checked(record: Any) -> Dict[str, Any]:
    if not isinstance(record, dict):
        return _invalid("is not a JSON object")
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return _invalid(f"names no valid pid ({_short(repr(pid))})")
    if not isinstance(host, str) or not host:
        return _invalid("names no host")
    checked: Dict[str, Any] = {"pid": pid, "host": host}
    for key in ("since", "heartbeat", "heartbeat_s"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            checked[key] = float(value)
    checked.setdefault("since", 0.0)
    checked.setdefault("heartbeat", checked["since"])
    checked.setdefault("heartbeat_s", HEARTBEAT_S)
    for key in ("boot_id", "start", "token"):
        if isinstance(record.get(key), str):
            checked[key] = record[key]
    cmdline = record.get("cmdline")
    if isinstance(cmdline, list) and all(isinstance(part, str) for part in cmdline):
        checked["cmdline"] = cmdline
    return checked


# -- judging a record ----------------------------------------------------------------------------
def heartbeat_age(record: Dict[str, Any], now: Optional[float] = None) -> float:
    """Seconds since ``record``'s last heartbeat (0 when its clock is ahead of ours)."""
    return max(0.0, (time.time() if now is None else now) - float(record.get("heartbeat", record.get("since", 0.0))))


def stale_after(record: Dict[str, Any]) -> float:
    """Seconds without a heartbeat after which a record from another host is stale."""
    beat = record.get("heartbeat_s")
    beat = beat if isinstance(beat, float) and 0 < beat <= 3600 else HEARTBEAT_S
    return STALE_AFTER_BEATS * beat


def lock_is_live(record: Optional[Dict[str, Any]], now: Optional[float] = None) -> bool:
    """Whether ``record``'s driver still runs, judged from the record alone.

    Same host and boot: the pid is alive and, when the record has one, its start time matches.
    Another host, or the same host name with another boot id: the heartbeat is fresher than
    `stale_after`. Invalid records are stale.
    """
    if not record or record.get("invalid"):
        return False
    recorded_boot, current_boot = record.get("boot_id"), boot_id()
    if record.get("host") != socket.gethostname() or (recorded_boot and current_boot and recorded_boot != current_boot):
        # Another host, or one of the same name booted apart (a machine named alike, or this one before a
        # reboot): its pid means nothing here, its heartbeat decides.
        return heartbeat_age(record, now) < stale_after(record)
    pid = int(record["pid"])
    if not pid_alive(pid):
        return False
    recorded_start = record.get("start")
    if recorded_start is None:
        return True  # nothing more to check it against
    actual = process_start(pid)
    return actual is None or actual == recorded_start


def driver_identity_problem(record: Dict[str, Any]) -> Optional[str]:
    """Why the live process with ``record``'s pid may not be the driver that wrote it; None if it is.

    The process must have the recorded start time and command line; a record without them cannot
    be verified. Call it just before signalling that pid.
    """
    pid = int(record.get("pid", -1))
    if record.get("invalid"):
        return f"the lock {record['invalid']}"
    if "start" not in record or "cmdline" not in record:
        return "the lock records no process start time and command line to check it against"
    start = process_start(pid)
    if start is None:
        return f"the start time of pid {pid} cannot be read (gone, or no /proc and no psutil)"
    if start != record["start"]:
        return f"pid {pid} started at another time than the process that wrote the lock (the pid was reused)"
    cmdline = process_cmdline(pid)
    if cmdline != record["cmdline"]:
        return f"pid {pid} runs {_command(cmdline or [])!r}, not the lock's driver {_command(record['cmdline'])!r}"
    return None


def describe_owner(record: Optional[Dict[str, Any]], now: Optional[float] = None) -> str:
    """Whose lock it is, in words: pid, host, command, since when, last heartbeat."""
    if not record:
        return "no owner recorded"
    if record.get("invalid"):
        return f"its owner record {record['invalid']}"
    parts = [f"pid {record['pid']} on host {record['host']}"]
    if record.get("cmdline"):
        parts.append(f"running {_command(record['cmdline'])!r}")
    if record.get("since"):
        parts.append(f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record['since']))}")
    if record.get("heartbeat"):
        parts.append(f"heartbeat {heartbeat_age(record, now):.0f} s ago")
    return ", ".join(parts)


def _command(cmdline: List[str], limit: int = 120) -> str:
    return _short(" ".join(shlex.quote(part) for part in cmdline), limit)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def live_elsewhere(session: str, previous: Dict[str, Any]) -> str:
    """Why a session whose owner record is live cannot be taken, and what to do."""
    quoted = shlex.quote(session)
    if previous["host"] != socket.gethostname():
        left = max(0.0, stale_after(previous) - heartbeat_age(previous))
        return (
            f"Session {session} is running on host {previous['host']} ({describe_owner(previous)}; live until "
            f"its heartbeat is {stale_after(previous):.0f} s old). Pause it there: lightning-bohb pause {quoted}. If that "
            f"driver is gone, resume in {left:.0f} s or now with: lightning-bohb resume --force {quoted}"
        )
    return (
        f"Session {session} is running ({describe_owner(previous)}). Pause it first: lightning-bohb pause {quoted}. "
        f"If that is not this session's driver, resume with: lightning-bohb resume --force {quoted}"
    )
