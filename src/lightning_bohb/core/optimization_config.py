"""`OptimizationConfig`: budget, concurrency, resources and where a search's sessions live."""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.location_backend import experiment_location

ERRORED_TRIAL_POLICIES = ("resume", "restart", "fail")
CHECKPOINT_COMPRESSIONS = (None, "zstd")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
MAX_SEED = 2**32 - 1
"""numpy's seeds are 32-bit: a larger seed fails in every trial (``seed_everything``)."""


@dataclass
class OptimizationConfig:
    """How the search runs: budget, concurrency, resources, where results go.

    Args:
        max_epochs: Epochs per trial (the trainer's ``max_epochs``; also the default ``max_t``).
        num_samples: Number of trials.
        max_concurrent_trials: Trials running at once (``None``: as many as resources allow).
        experiment_name: Name of the experiment folder (default ``lightning_bohb``; a `TuneReflowCLI`
            given a name supplies it).
        experiment_dir: Folder that holds experiments (default ``./experiments``).
        seed: Seed for the searcher and every trial (``seed_everything``); ``None`` = not seeded.
        cpus_per_trial: CPUs reserved per trial.
        gpus_per_trial: GPUs reserved per trial.
        checkpoints_to_keep: Checkpoints kept per trial.
        pause_timeout: Seconds a pause waits for a trial to reach validation before stopping it
            at its last checkpoint.
        errored_trial_policy: On resume, errored trials are ``"resume"``-d from their checkpoint,
            ``"restart"``-ed from scratch, or left as ``"fail"``-ed.
        pause_after: Pause the session (never stop it) after this long: seconds or ``"90m"``, ``"8h"``.
            Counted from each start or resume. Needs `TuneReflowCLI`.
        pause_at: Pause the session at this local clock time, ``"HH:MM"`` (its next occurrence).
        checkpoint_compression: ``"zstd"`` compresses each trial checkpoint (pyarrow's zstd codec),
            ``None`` (default) writes Lightning's file as it is. Resumes read either kind.
        checkpoint_every: A trial writes a checkpoint every this many validated epochs (default 1),
            at its last epoch, and whenever it pauses. Needs a scheduler that stops trials rather
            than pausing them (not ``bohb``).
    """

    max_epochs: int = 10
    num_samples: int = 10
    max_concurrent_trials: Optional[int] = None
    experiment_name: Optional[str] = None
    experiment_dir: Optional[str] = None
    seed: Optional[int] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    checkpoints_to_keep: int = 2
    pause_timeout: float = 600.0
    errored_trial_policy: str = "resume"
    pause_after: Optional[Union[float, str]] = None
    pause_at: Optional[str] = None
    checkpoint_compression: Optional[str] = None
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        _integers(self, "max_epochs", "num_samples", "checkpoints_to_keep", "checkpoint_every")
        if self.max_concurrent_trials is not None:
            _integers(self, "max_concurrent_trials")
        _numbers(self, "cpus_per_trial", "gpus_per_trial", "pause_timeout")
        for field_name in ("cpus_per_trial", "gpus_per_trial"):
            _require(self, field_name, math.isfinite(getattr(self, field_name)), "a finite number")
        if self.seed is not None:
            seed_ok = isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and 0 <= self.seed <= MAX_SEED
            _require(self, "seed", seed_ok, "an integer in [0, 2**32 - 1] (numpy's seed range), or None")
            self.seed = int(self.seed)
        if self.experiment_dir is not None:
            _require(self, "experiment_dir", isinstance(self.experiment_dir, (str, os.PathLike)), "a folder path")
            self.experiment_dir = os.fspath(self.experiment_dir)
            _require(self, "experiment_dir", isinstance(self.experiment_dir, str) and _printable(self.experiment_dir), "a folder path")
        _require(self, "max_epochs", self.max_epochs >= 1, "max_epochs >= 1")
        _require(self, "num_samples", self.num_samples >= 1, "num_samples >= 1")
        if self.max_concurrent_trials is not None:
            _require(self, "max_concurrent_trials", self.max_concurrent_trials >= 1, "max_concurrent_trials >= 1")
        if self.experiment_name is not None:
            _require(self, "experiment_name", bool(str(self.experiment_name).strip()), "a non-empty name")
            _require(self, "experiment_name", _folder_name(self.experiment_name), _FOLDER_NAME)
        _require(self, "cpus_per_trial", self.cpus_per_trial > 0, "cpus_per_trial > 0")
        _require(self, "gpus_per_trial", self.gpus_per_trial >= 0, "gpus_per_trial >= 0")
        _require(self, "checkpoints_to_keep", self.checkpoints_to_keep >= 1, "checkpoints_to_keep >= 1")
        _require(self, "pause_timeout", self.pause_timeout > 0, "pause_timeout > 0")
        _require(self, "checkpoint_every", self.checkpoint_every >= 1, "checkpoint_every >= 1")
        _require(
            self,
            "checkpoint_compression",
            self.checkpoint_compression in CHECKPOINT_COMPRESSIONS,
            "one of ['zstd', None]",
        )
        _require(
            self,
            "errored_trial_policy",
            self.errored_trial_policy in ERRORED_TRIAL_POLICIES,
            f"one of {list(ERRORED_TRIAL_POLICIES)}",
        )

        if self.pause_after is not None:
            try:
                seconds = parse_duration(self.pause_after)
            except ValueError as err:
                raise ConfigError(f"The value of `pause_after` is {self.pause_after!r}: {err}.") from None
            _require(self, "pause_after", seconds > 0, "pause_after > 0")
        if self.pause_at is not None and not _CLOCK.match(str(self.pause_at)):
            raise ConfigError(f"The value of `pause_at` is {self.pause_at!r}, but must be a clock time `HH:MM`.")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def experiment_location(self) -> str:
        """``<experiment_dir>/<experiment_name>`` (defaults filled in), where this search's sessions live: a URI,
        or an absolute folder (`lightning_bohb.utils.location_backend.experiment_location`)."""
        return experiment_location(self.experiment_dir, self.experiment_name)

    def with_location(self, experiment_name: Optional[str], experiment_dir: Optional[str]) -> "OptimizationConfig":
        """This config with the experiment location another owner (`TuneReflowCLI`) was given.

        Each value fills a field left unset here; a value that differs from one set here is a `ConfigError`.
        """
        values: Dict[str, Any] = {}
        for field_name, given in (("experiment_name", experiment_name), ("experiment_dir", experiment_dir)):
            if given is None:
                continue
            mine = getattr(self, field_name)
            same = mine is not None and (
                Path(str(mine)).expanduser().resolve() == Path(str(given)).expanduser().resolve()
                if field_name == "experiment_dir"
                else str(mine) == str(given)
            )
            if mine is not None and not same:
                raise ConfigError(
                    f"`{field_name}` is {given!r} in TuneReflowCLI but {mine!r} in OptimizationConfig; "
                    "set it in one place (OptimizationConfig), or give both the same value."
                )
            values[field_name] = str(given)
        return dataclasses.replace(self, **values) if values else self

    def auto_pause_deadline(self, now: Optional[float] = None) -> Optional[float]:
        """When ``pause_after``/``pause_at`` pause a run starting ``now`` (epoch seconds), if at all."""
        now = now if now is not None else datetime.datetime.now().timestamp()
        deadlines = []
        if self.pause_after is not None:
            deadlines.append(now + parse_duration(self.pause_after))
        if self.pause_at is not None:
            clock = _CLOCK.match(str(self.pause_at))
            assert clock is not None  # validated in __post_init__
            hour, minute = map(int, clock.groups())
            start = datetime.datetime.fromtimestamp(now)
            at = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if at <= start:
                at += datetime.timedelta(days=1)
            deadlines.append(at.timestamp())
        return min(deadlines) if deadlines else None


def parse_duration(text: Union[str, float, int]) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` (or plain seconds) as seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"invalid duration {text!r}; use a number with s, m, h, d or w, e.g. 30d or 12h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def _require(config: OptimizationConfig, field: str, ok: bool, constraint: str) -> None:
    if not ok:
        value = getattr(config, field)
        raise ConfigError(f"The value of `{field}` is {value!r}, but must be `{constraint}`.")


def _integers(config: OptimizationConfig, *fields: str) -> None:
    for field in fields:
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"The value of `{field}` is {value!r}, but must be an integer.")
        setattr(config, field, int(value))


_FOLDER_NAME = "a folder name: no '/', not '.' or '..', no control characters"


def _folder_name(name: Any) -> bool:
    """Whether ``name`` names one folder inside the experiment folder (it cannot lead out of it)."""
    if not isinstance(name, str) or name in (".", "..") or not _printable(name):
        return False
    return not any(sep in name for sep in (os.sep, os.altsep, "/") if sep)


def _printable(text: str) -> bool:
    return not any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


def _numbers(config: OptimizationConfig, *fields: str) -> None:
    for field in fields:
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"The value of `{field}` is {value!r}, but must be a number.")
