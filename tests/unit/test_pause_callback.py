"""TunePauseCallback in a real Lightning Trainer (no Ray): holds at the end of a validated epoch."""

import sys
import threading
from pathlib import Path

import lightning.pytorch as pl

from lightning_bohb.callbacks import TunePauseCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from digits_model import DigitsClassifier, DigitsDataModule  # noqa: E402


class Recorder(DigitsClassifier):
    def __init__(self, signal_file, **kwargs):
        super().__init__(**kwargs)
        self.signal_file = signal_file
        self.events = []

    def on_train_epoch_end(self):
        self.events.append(("epoch_end", self.current_epoch))
        if self.current_epoch == 1:
            Path(self.signal_file).touch()  # request a pause during epoch 1's end


def test_holds_after_the_epoch_end_hooks_and_continues_when_cancelled(tmp_path):
    signal_file = tmp_path / "pause.signal"
    callback = TunePauseCallback(pause_signal_file=signal_file, check_interval=0.05)
    model = Recorder(str(signal_file))

    def cancel_when_held():
        while callback.pauses == 0:  # counted when the hold begins
            threading.Event().wait(0.05)
        model.events.append(("hold", model.current_epoch))
        signal_file.unlink()

    threading.Thread(target=cancel_when_held, daemon=True).start()
    trainer = pl.Trainer(
        max_epochs=3, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=2, limit_train_batches=3,
    )
    trainer.fit(model, DigitsDataModule())
    assert model.events == [("epoch_end", 0), ("epoch_end", 1), ("hold", 1), ("epoch_end", 2)]
    assert callback.pauses == 1 and callback.state_dict() == {"pauses": 1, "reports": 3}  # 3 epochs reported


def test_the_time_to_the_next_validated_epoch_end_counts_steps_validation_and_epoch_end_work():
    from types import SimpleNamespace

    from lightning_bohb.callbacks.tune_pause_callback import EpochTiming

    timing = EpochTiming()
    for now in (10.0, 10.5, 11.0, 11.5):  # steps of 0.5 s
        timing.step_ended(now)
    timing.validation_started = 20.0
    timing.validation_ended(22.0)  # validation: 2 s
    timing.epoch_end_done(23.0)  # the model's epoch end, the report and its checkpoint: 1 s
    trainer = SimpleNamespace(num_training_batches=10, check_val_every_n_epoch=1, current_epoch=0, num_val_batches=[4])
    assert timing.to_validated_epoch_end(trainer, batch_idx=3) == 6 * 0.5 + 2 + 1
    every_other = SimpleNamespace(num_training_batches=10, check_val_every_n_epoch=2, current_epoch=0, num_val_batches=[4])
    assert timing.to_validated_epoch_end(every_other, batch_idx=3) == (6 + 10) * 0.5 + 2 + 1  # validates after epoch 1
    fresh = EpochTiming()
    fresh.step_ended(0.0)
    fresh.step_ended(1.0)
    assert fresh.to_validated_epoch_end(trainer, batch_idx=1) == 8 * 1.0 + 4 * 1.0  # validation guessed from its batches
