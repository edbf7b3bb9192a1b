"""A model written against the standalone ``pytorch_lightning`` package (imported only by the tests that use it)."""

import pytorch_lightning


class StandaloneModel(pytorch_lightning.LightningModule):
    def __init__(self, hidden: int = 4):
        super().__init__()
        self.hidden = hidden
