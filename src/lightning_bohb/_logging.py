"""The package logger: stderr, not propagated to the root logger."""

import logging

logger = logging.getLogger("lightning_bohb")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[lightning_bohb] %(levelname)s: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
