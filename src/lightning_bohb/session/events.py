"""`SessionListener`: what a running session tells its front end (a terminal, a log, a test).

The runner never prints; it calls these methods. Every method here does nothing, so a listener
overrides only what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from lightning_bohb.session.runner import TuneSession


@dataclass
class PauseReport:
    """How a run ended early: a graceful pause, or a quit that kept only the last checkpoints."""

    quit: bool
    timed_out: Dict[str, Optional[int]] = field(default_factory=dict)
    """Trials that did not reach validation within ``pause_timeout``: id -> epoch of the checkpoint kept."""
    epoch_end_only: Dict[str, str] = field(default_factory=dict)
    """Trials that could not checkpoint at a step before the pause's deadline: id -> why (their loader)."""


class SessionListener:
    """Receives a session's events; the runner calls these from its own thread (or a signal handler)."""

    def on_resume(self, session: "TuneSession") -> None:
        """A saved session was loaded and is about to continue."""

    def on_start(self, session: "TuneSession") -> None:
        """Ray is up and the pause channel exists; the search is about to run."""

    def on_stop(self, session: "TuneSession") -> None:
        """The search loop ended (finished, paused or failed); Ray is still up."""

    def on_pause_requested(self, session: "TuneSession") -> None:
        """A pause was asked for; trials pause at their next validated epoch end."""

    def on_pause_cancelled(self, session: "TuneSession") -> None:
        """A pending pause was withdrawn."""

    def on_quit_requested(self, session: "TuneSession") -> None:
        """A quit was asked for; the run stops at once."""

    def on_result(self, session: "TuneSession", trial: Any, result: Dict[str, Any]) -> None:
        """A trial reported a validated epoch."""

    def on_trial_status(self, session: "TuneSession", trial: Any, previous: Optional[str], status: str) -> None:
        """A trial changed status (Tune's ``PENDING``, ``RUNNING``, ``PAUSED``, ``TERMINATED``, ``ERROR``).

        ``previous`` is ``None`` the first time this run sees the trial. Trials that had already ended
        before a resume are not reported. A PAUSED trial in ``session.coordinator.holds.held`` was paused
        on request (``lightning-bohb trial pause``); any other was paused by its scheduler.
        """

    def on_completed(self, session: "TuneSession", best_config: Optional[Path]) -> None:
        """Every trial finished; ``best_config`` is the written best config, if any trial reported."""

    def on_paused(self, session: "TuneSession", report: PauseReport) -> None:
        """The session is saved as PAUSED and can be resumed with ``session.resume_command``."""

    def on_failed(self, session: "TuneSession", error: BaseException) -> None:
        """The run raised; the session is saved as FAILED and can still be resumed."""
