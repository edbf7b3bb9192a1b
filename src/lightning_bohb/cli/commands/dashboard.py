"""``lightning-bohb dashboard [EXPERIMENT_DIR|SESSION_DIR]``: serve the live web dashboard (`lightning_bohb.cli.dashboard`)."""

from __future__ import annotations

import argparse

from lightning_bohb.cli.arguments import Number
from lightning_bohb.cli.commands.base import Command
from lightning_bohb.utils.layout import DEFAULT_EXPERIMENT_DIR


class Dashboard(Command):
    name = "dashboard"
    help = "serve a live web dashboard of sessions"
    description = (
        "Serve a local web page that shows the sessions under EXPERIMENT_DIR (or one SESSION_DIR) live, read from "
        "their files, with buttons to pause, quit and resume sessions and to pause, continue and stop trials. "
        "Every request needs the random token in the printed URL. On a remote machine: "
        "ssh -L PORT:127.0.0.1:PORT HOST, then open the URL here. Needs: pip install 'lightning-bohb[dashboard]'."
    )
    local_only = "path"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", metavar="EXPERIMENT_DIR|SESSION_DIR", nargs="?", default=DEFAULT_EXPERIMENT_DIR,
                            help=f"default: {DEFAULT_EXPERIMENT_DIR}")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; anything else is "
                            "reachable from other machines and prints a warning)")
        parser.add_argument("--port", type=Number(int), default=8750, help="port (default: 8750; 0: any free port)")
        parser.add_argument("--read-only", action="store_true", help="no controls: the page only shows")

    @classmethod
    def handle(cls, args: argparse.Namespace) -> int:
        from lightning_bohb.cli import dashboard  # FastAPI and uvicorn: an optional dependency

        return dashboard.serve(args.path, host=args.host, port=args.port, read_only=args.read_only)
