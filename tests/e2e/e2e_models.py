"""Models for the e2e tests: the example classifier, recording every epoch hook it runs."""

import json
import os
import threading
import time

from digits_model import DigitsClassifier


class RecordingClassifier(DigitsClassifier):
    """Appends each epoch hook to ``<record_dir>/<trial_id>.jsonl``; each epoch takes >= ``min_epoch_seconds``.

    With ``crash_once_file``, the first trial to end an epoch >= 1 while that file exists removes it
    and crashes. With ``hold_checkpoint_marker``, the first trial to save a checkpoint of an epoch
    >= 1 creates that file and blocks in the middle of the save (a kill -9 test ends it).

    The floor on epoch time stands in for a bigger model, so that a pause can land mid-search.
    """

    def __init__(
        self,
        record_dir: str = "",
        min_epoch_seconds: float = 0.0,
        crash_once_file: str = "",
        hold_checkpoint_marker: str = "",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.record_dir = record_dir
        self.crash_once_file = crash_once_file
        self.hold_checkpoint_marker = hold_checkpoint_marker
        self.min_epoch_seconds = min_epoch_seconds
        self._epoch_started = 0.0

    def _record(self, hook):
        if not self.record_dir:
            return
        import ray
        from ray import tune

        path = os.path.join(self.record_dir, f"{tune.get_context().get_trial_id()}.jsonl")
        event = {"hook": hook, "epoch": self.current_epoch, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
        if hook == "train_epoch_end":
            event["val_loss"] = float(self.trainer.callback_metrics["val_loss"])
            event["config"] = {"lr": self.lr, "hidden_size": self.hparams.hidden_size}
        with open(path, "a") as handle:
            handle.write(json.dumps(event) + "\n")

    def on_train_epoch_start(self):
        self._epoch_started = time.monotonic()
        self._record("train_epoch_start")

    def on_train_epoch_end(self):
        remaining = self.min_epoch_seconds - (time.monotonic() - self._epoch_started)
        if remaining > 0:
            time.sleep(remaining)
        self._record("train_epoch_end")
        if self.crash_once_file and self.current_epoch >= 1:
            try:
                os.remove(self.crash_once_file)  # the first trial to get here crashes, once
            except FileNotFoundError:
                return
            raise RuntimeError("injected crash")

    def on_save_checkpoint(self, checkpoint):
        if not self.hold_checkpoint_marker or self.current_epoch < 1:
            return
        try:
            os.close(os.open(self.hold_checkpoint_marker, os.O_CREAT | os.O_EXCL))  # the first trial only
        except FileExistsError:
            return
        threading.Event().wait()  # mid-checkpoint until the test kills the session
