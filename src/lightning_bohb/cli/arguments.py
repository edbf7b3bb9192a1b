"""`Number`: the one argparse ``type`` of every option that takes a number or a duration."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Number:
    """A finite number of ``kind`` (``int`` or ``float``) that is >= ``minimum`` (> with ``strict``).

    With ``duration`` it is a time in seconds, written ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or as
    plain seconds (`lightning_bohb.core.optimization_config.parse_duration`). A bad value is argparse's
    usage error (exit status 2) that says what to give.
    """

    kind: type = float
    minimum: float = 0
    strict: bool = False
    duration: bool = False

    def __call__(self, text: str) -> Union[int, float]:
        if self.duration:
            from lightning_bohb.core.optimization_config import parse_duration

            try:
                seconds = parse_duration(text)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
            if not self._ok(seconds):
                raise argparse.ArgumentTypeError(f"invalid duration {text!r}; give a time {self._bound()}, e.g. 60s")
            return seconds
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not self._ok(value):
            what = "an integer" if self.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; give {what} {self._bound()}")
        return value

    def _ok(self, value: float) -> bool:
        return value > self.minimum if self.strict else value >= self.minimum

    def _bound(self) -> str:
        return f"{'>' if self.strict else '>='} {self.minimum:g}"
