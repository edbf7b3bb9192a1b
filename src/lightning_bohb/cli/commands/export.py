"""``lightning-bohb export SESSION_DIR --csv FILE``: every trial's per-epoch results as CSV (`lightning_bohb.cli.export`)."""

from __future__ import annotations

import argparse

from lightning_bohb.cli.commands.base import Command, add_session_dir


class Export(Command):
    name = "export"
    help = "write every trial's per-epoch results as CSV"
    description = (
        "Write one row per trial and validated epoch: the trial id and status, every reported metric, Tune's "
        "fields and the trial's config as config/<name> columns (the columns of Ray's ResultGrid.get_dataframe()). "
        "Reads the session's result files only; works while it runs."
    )
    local_only = "session_dir"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser)
        parser.add_argument("--csv", metavar="FILE", required=True, help="CSV file to write ('-': stdout)")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        from lightning_bohb.cli import export

        return export.export_csv(args.session_dir, args.csv)
