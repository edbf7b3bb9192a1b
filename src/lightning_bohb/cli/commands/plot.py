"""``lightning-bohb plot SESSION_DIR [-o FILE]``: the session's charts as one HTML file (`lightning_bohb.cli.export`)."""

from __future__ import annotations

import argparse

from lightning_bohb.cli.commands.base import Command, add_session_dir


class Plot(Command):
    name = "plot"
    help = "write the session's charts as one HTML file"
    description = (
        "Write a self-contained HTML report (plotly inlined, nothing fetched when opened): trials table, learning "
        "curves, epochs reached per trial with the scheduler's rungs, hyperparameters vs the metric, best config. "
        "Needs: pip install 'lightning-bohb[dashboard]'."
    )
    local_only = "session_dir"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_session_dir(parser)
        parser.add_argument("-o", "--output", metavar="FILE", default="report.html", help="HTML file to write (default: report.html)")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        from lightning_bohb.cli import export

        return export.plot(args.session_dir, args.output)
