"""The ``lightning-bohb`` commands, one module each: `COMMANDS` maps a command's name to its `Command`.

`status`, `list`, `clean` and `export-best` read ``session_state.summary.yaml`` only: they never
unpickle a session and never import Ray, torch or Lightning. `run` and `resume` import them lazily.
"""

from __future__ import annotations

from typing import Dict, Type

from lightning_bohb.cli.commands.base import Command
from lightning_bohb.cli.commands.clean import Clean
from lightning_bohb.cli.commands.dashboard import Dashboard
from lightning_bohb.cli.commands.export import Export
from lightning_bohb.cli.commands.export_best import ExportBest
from lightning_bohb.cli.commands.list_sessions import ListSessions
from lightning_bohb.cli.commands.pause import Pause
from lightning_bohb.cli.commands.plot import Plot
from lightning_bohb.cli.commands.resume import Resume
from lightning_bohb.cli.commands.run import Run
from lightning_bohb.cli.commands.status import Status
from lightning_bohb.cli.commands.trial import TrialCommand

COMMANDS: Dict[str, Type[Command]] = {
    command.name: command
    for command in (Run, Pause, Resume, Status, ListSessions, Clean, ExportBest, Export, Plot, Dashboard, TrialCommand)
}
"""In the order ``lightning-bohb --help`` lists them."""
