"""The package logger, configured as a library's should be: a `NullHandler`, normal propagation.

Users route ``lightning_bohb`` messages as they like; the console script and `TuneReflowCLI` add
a handler of their own for the terminal (`console_handler`) while they run.
"""

import logging

logger = logging.getLogger("lightning_bohb")
logger.addHandler(logging.NullHandler())


def console_handler() -> logging.Handler:
    """A stderr handler in the CLI's format, for the CLI to add (and remove) around a run."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[lightning_bohb] %(levelname)s: %(message)s"))
    return handler
