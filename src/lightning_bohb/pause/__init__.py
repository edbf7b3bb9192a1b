"""Pause control: the channel trials listen to, the driver-side coordinator, signals, and the pause state."""
