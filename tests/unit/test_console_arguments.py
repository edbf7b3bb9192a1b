"""`Number`, the argparse type of every option that takes a number or a duration: bad values are usage errors."""

import argparse

import pytest

from lightning_bohb.cli.arguments import Number
from lightning_bohb.cli.main import main


@pytest.mark.parametrize(
    "kind, text, value",
    [(Number(int, minimum=1), "3", 3), (Number(strict=True), "0.5", 0.5), (Number(), "0", 0.0),
     (Number(duration=True), "2w", 1209600.0), (Number(strict=True, duration=True), "90", 90.0)],
)
def test_numbers_and_durations_in_their_bounds_are_taken(kind, text, value):
    assert kind(text) == value and type(kind(text)) is type(value)


@pytest.mark.parametrize(
    "kind, text, message",
    [(Number(int, minimum=1), "2.5", "invalid value '2.5'; give an integer >= 1"),
     (Number(strict=True), "inf", "invalid value 'inf'; give a number > 0"),
     (Number(), "-1", "invalid value '-1'; give a number >= 0"),
     (Number(strict=True, duration=True), "0s", "invalid duration '0s'; give a time > 0, e.g. 60s"),
     (Number(duration=True), "soon", "invalid duration 'soon'; use a number with s, m, h, d or w")],
)
def test_values_out_of_bounds_say_what_to_give(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match="^" + message):
        kind(text)


def test_a_pause_timeout_is_a_duration(capsys):
    assert main(["pause", "/nowhere", "--timeout", "2m", "--now"]) == 1  # parsed: the session is what is missing
    assert "usage:" not in capsys.readouterr().err
    assert main(["pause", "/nowhere", "--timeout", "-5"]) == 2
    assert "argument --timeout: invalid duration '-5'" in capsys.readouterr().err
