"""`Command`: one ``lightning-bohb`` command, its arguments and what it does (`lightning_bohb.cli.commands.COMMANDS`)."""

from __future__ import annotations

import argparse
from typing import ClassVar, Optional

from lightning_bohb.utils.layout import DEFAULT_EXPERIMENT_DIR


class Command:
    """A console command: ``lightning-bohb <name> ...``.

    A subclass names itself, says what it does (``help`` in the command list, ``description`` and
    ``epilog`` in its ``--help``), declares its arguments (`add_arguments`) and runs them (`run`,
    which returns the exit status). Importing its module loads neither Ray nor torch: `run` does that.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    description: ClassVar[str]
    epilog: ClassVar[str] = ""
    local_only: ClassVar[Optional[str]] = None
    """The argument naming a session folder whose trial files the command reads or writes: a URI is refused."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        raise NotImplementedError


def add_session_dir(parser: argparse.ArgumentParser, help: str = "the session folder") -> None:
    parser.add_argument("session_dir", metavar="SESSION_DIR", help=help)


def add_experiment_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment_dir", metavar="EXPERIMENT_DIR", nargs="?", default=DEFAULT_EXPERIMENT_DIR, help=f"default: {DEFAULT_EXPERIMENT_DIR}"
    )
