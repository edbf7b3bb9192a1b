"""Session persistence and control: state file, atomic storage, pause channel, signals."""
