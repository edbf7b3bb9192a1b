"""Errors raised by LightningTune. Every expected failure derives from `LightningTuneError`."""


class LightningTuneError(Exception):
    """Root of every error LightningTune raises on purpose; its message says what to do."""


class ConfigError(LightningTuneError, ValueError):
    """The base config, search space or optimization config is invalid; raised before any trial starts."""


class MissingDependencyError(LightningTuneError, ImportError):
    """An optional package needed by the chosen feature is not installed; names the pip extra."""


class SessionError(LightningTuneError):
    """A session directory cannot be used: missing, corrupt, too new, locked, or changed code."""


class SessionLockLost(SessionError):
    """The running driver lost its session's lock or lease (taken over, or not renewable in time): it
    stopped at once and wrote nothing more. A process that ends with it exits with `EXIT_LOCK_LOST`."""


class SessionPaused(KeyboardInterrupt):
    """Raised by `TuneReflowCLI.run` when the session paused; carries the resume command.

    It subclasses `KeyboardInterrupt` so that the seed's ``except KeyboardInterrupt:`` works. Left
    uncaught in a script started through `TuneReflowCLI`, the process exits with `EXIT_PAUSED` and
    no traceback.
    """

    def __init__(self, session_dir, resume_command):
        super().__init__(f"Session paused. Resume with: {resume_command}")
        self.session_dir = session_dir
        self.resume_command = resume_command


EXIT_PAUSED = 3
"""Exit status of a process whose session paused (documented in the README and docs/commands.md)."""
EXIT_LOCK_LOST = 4
"""Exit status of a driver that lost its session's lock or lease to another driver, or could not renew it."""
