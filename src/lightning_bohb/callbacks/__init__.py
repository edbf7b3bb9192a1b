"""Lightning callbacks that run inside each trial."""

from lightning_bohb.callbacks.loader_workers import FreshLoaderWorkers
from lightning_bohb.callbacks.rng_state import RNGStateCallback
from lightning_bohb.callbacks.tune_pause_callback import TunePauseCallback
from lightning_bohb.callbacks.tune_report_callback import TuneReportCallback

__all__ = ["FreshLoaderWorkers", "RNGStateCallback", "TunePauseCallback", "TuneReportCallback"]
