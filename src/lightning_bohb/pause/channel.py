"""The pause channel: a named Ray actor owned by the driver, reachable from trials on every node.

It lives only as long as the driver that created it, so a resumed session starts with a fresh,
empty channel: an old pause request can never be restored (one-shot by construction).

Any job of the Ray cluster can find a named actor and call it. So every call that changes the
channel carries the session's key, a random secret the driver gives the actor when it creates it
and its trials in their `TrialSpec` (never written into the session folder): a call without it is
refused with `PermissionError` and changes nothing. Reads (whether a pause stands) need no key.
"""

from __future__ import annotations

import enum
import secrets
import threading
import time
from typing import Any, Dict, Optional, Tuple

from lightning_bohb.pause.remote import ACTOR_PREFIX, NAMESPACE, RemoteControl


class HoldState(str, enum.Enum):
    """What a trial holding at a pause learns from `PauseChannel.wait_while_paused`."""

    PAUSED = "paused"
    """The pause stands: keep holding."""
    CANCELLED = "cancelled"
    """The pause was withdrawn: train on."""
    RELEASED = "released"
    """The driver ended the run: this worker is about to be ended."""


class PauseChannel(RemoteControl):
    """Actor body: the pending pause request and the trials that acknowledged it; also the requests of
    `lightning-bohb pause` from other nodes (`RemoteControl`)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self._requested_at: Optional[float] = None
        self._deadline: Optional[float] = None
        self._acks: Dict[str, Optional[int]] = {}
        self._notes: Dict[str, str] = {}
        self._released = False
        self._changed = threading.Condition()

    def request_pause(self, key: str, deadline: Optional[float] = None) -> None:
        """Ask for a pause; ``deadline`` (epoch seconds): when it must be saved (see `pause_status`)."""
        self._check(key)
        with self._changed:
            if self._requested_at is None:
                self._requested_at = time.time()
            if deadline is not None and (self._deadline is None or deadline < self._deadline):
                self._deadline = deadline
            self._changed.notify_all()

    def cancel_pause(self, key: str) -> None:
        self._check(key)
        with self._changed:
            self._requested_at = None
            self._deadline = None
            self._acks.clear()
            self._changed.notify_all()

    def wait_while_paused(self, timeout: float) -> HoldState:
        """Block up to ``timeout`` s while the pause stands."""
        with self._changed:
            self._changed.wait_for(lambda: self._released or self._requested_at is None, timeout)
            if self._released:
                return HoldState.RELEASED
            return HoldState.PAUSED if self._requested_at is not None else HoldState.CANCELLED

    def pause_requested(self) -> bool:
        return self._requested_at is not None

    def pause_status(self) -> Tuple[bool, Optional[float]]:
        """Whether a pause stands, and by when (epoch seconds) it must be saved, if it has a deadline."""
        return self._requested_at is not None, self._deadline

    def acknowledge(self, key: str, trial_id: str, global_step: Optional[int]) -> bool:
        """Record that ``trial_id`` reported its last checkpoint (at ``global_step``) and now waits."""
        self._check(key)
        if self._requested_at is not None:
            self._acks[trial_id] = global_step
        return self._requested_at is not None

    def acknowledgements(self) -> Dict[str, Optional[int]]:
        return dict(self._acks)

    def note(self, key: str, trial_id: str, message: str) -> None:
        """Why ``trial_id`` cannot pause before its epoch end although the pause has a deadline."""
        self._check(key)
        self._notes[trial_id] = message

    def notes(self) -> Dict[str, str]:
        return dict(self._notes)

    def release(self, key: str) -> None:
        """The driver ended the run: held trials stop waiting (the driver also ends their processes)."""
        self._check(key)
        with self._changed:
            self._released = True
            self._changed.notify_all()


class ChannelHandle:
    """The driver's calls on its pause channel actor (what `PauseState` and the coordinator use)."""

    def __init__(self, actor, key: str) -> None:
        self.actor = actor
        self.key = key

    def request_pause(self, deadline: Optional[float] = None) -> None:
        self.actor.request_pause.remote(self.key, deadline)

    def cancel_pause(self) -> None:
        self.actor.cancel_pause.remote(self.key)

    def release(self) -> None:
        self.actor.release.remote(self.key)

    def acknowledgements(self) -> Dict[str, Optional[int]]:
        import ray

        return ray.get(self.actor.acknowledgements.remote())

    def notes(self) -> Dict[str, str]:
        import ray

        return ray.get(self.actor.notes.remote())


def actor_name(session_id: str) -> str:
    return f"{ACTOR_PREFIX}{session_id}"


def new_key() -> str:
    """A session key: what the driver's and its trials' calls that change the channel carry."""
    return secrets.token_hex(16)


def create_control(session_id: str, key: str):
    """Start the control actor for this driver (0 CPUs, so it never takes a trial's slot), obeying ``key``."""
    import ray

    # Threaded: every held trial blocks in `wait_while_paused` while the driver still gets through.
    cls = ray.remote(num_cpus=0, max_concurrency=64)(PauseChannel)  # type: ignore[call-overload]
    return cls.options(name=actor_name(session_id), namespace=NAMESPACE, get_if_exists=False).remote(key)


class ControlClient:
    """Trial-side handle to the control actor, found by name; picklable (holds the name and the session key)."""

    def __init__(self, name: str, key: str, timeout: float = 30.0) -> None:
        self.name = name
        self.key = key
        self.timeout = timeout
        self._actor: Any = None

    def __getstate__(self):
        return {"name": self.name, "key": self.key, "timeout": self.timeout, "_actor": None}

    def _handle(self):
        import ray

        if self._actor is None:
            self._actor = ray.get_actor(self.name, namespace=NAMESPACE)
        return self._actor

    def pause_requested(self) -> bool:
        import ray

        return bool(ray.get(self._handle().pause_requested.remote(), timeout=self.timeout))

    def pause_status(self) -> Tuple[bool, Optional[float]]:
        import ray

        requested, deadline = ray.get(self._handle().pause_status.remote(), timeout=self.timeout)
        return bool(requested), deadline

    def wait_while_paused(self, timeout: float) -> HoldState:
        import ray

        return ray.get(self._handle().wait_while_paused.remote(timeout), timeout=timeout + self.timeout)

    def acknowledge(self, trial_id: str, global_step: Optional[int]) -> bool:
        import ray

        return bool(ray.get(self._handle().acknowledge.remote(self.key, trial_id, global_step), timeout=self.timeout))

    def note(self, trial_id: str, message: str) -> None:
        import ray

        ray.get(self._handle().note.remote(self.key, trial_id, message), timeout=self.timeout)
