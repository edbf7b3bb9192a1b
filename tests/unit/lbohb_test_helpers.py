"""Tiny importable classes referenced by ``class_path`` in the unit tests (no torch, no Lightning)."""


class LrDataModule:
    """A datamodule that, like the example model, takes ``lr``: makes the bare name ``lr`` ambiguous."""

    def __init__(self, lr: float = 0.1, batch_size: int = 32):
        self.lr = lr
        self.batch_size = batch_size


class KwargsModel:
    """A model that accepts any keyword argument."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


class Point:
    def __init__(self, x=0, y=0):
        self.x, self.y = x, y


class Wrapper:
    def __init__(self, inner=None, items=()):
        self.inner, self.items = inner, items
