"""The name a saved session's pickles give the snapshot copy of earlier releases; nothing imports it.

Tune pickles its syncer's last command, this package's `_upload_snapshot_last`, into the search
algorithm's state (``search_gen_state-*.json``) of every session. Until it moved to `snapshot_journal`,
that function lived in this module (0.1.0 and later), so a session paused by such a release names it
here, and its resume must find it here (``tests/e2e/test_golden_sessions.py``).
"""

from lightning_bohb._ray.snapshot_journal import _upload_snapshot_last

__all__ = ["_upload_snapshot_last"]
