"""A session's layout: the name of every file and folder of a session, once.

``<experiment_dir>`` (default `DEFAULT_EXPERIMENT_DIR`) ``/<experiment_name>`` (default `DEFAULT_EXPERIMENT_NAME`)
``/session_<id>/``, where ``<experiment_dir>/<experiment_name>/session_<id>/`` holds (in a local folder or under a prefix in
object storage, `lightning_bohb.session.backend`):

- `STATE_FILE` (or 0.1.0's `LEGACY_STATE_FILE`): what the session resumes from (`lightning_bohb.session.state`), and `SUMMARY_FILE`,
  its YAML summary for people and for the commands that only look (``status``, ``list``, the dashboard);
- `LOCK_FILE`, the owner record, and `OS_LOCK_FILE`, the file its OS lock is on (`lightning_bohb.session.lock`);
- `TUNE_FOLDER`, Ray Tune's experiment (trials, checkpoints, Tune's snapshots);
- `BEST_CONFIG_FILE`, the best trial's LightningCLI config, once the search has completed;
- `CONTROL_FILE`, the running driver's control record (`lightning_bohb.pause.remote`), `PAUSE_WITHIN_FILE`,
  a pending ``pause --within`` deadline (`lightning_bohb.pause.state`), `REQUESTS_DIR`, per-trial requests
  (`lightning_bohb.pause.trial_requests`), and `RESUME_LOG`, the output of a resume the dashboard started.

Every layer reads these names from here (the bottom layer), so a folder is named in one place.
"""

DEFAULT_EXPERIMENT_DIR = "./experiments"
"""Where experiments live unless a study, a config or the command line says otherwise."""
DEFAULT_EXPERIMENT_NAME = "lightning_bohb"
SESSION_PREFIX = "session_"
"""A session's folder is ``session_<id>``."""
STATE_FILE = "session_state.json"
"""The session state: plain data with a format version (`lightning_bohb.session.state_format`)."""
LEGACY_STATE_FILE = "session_state.pkl"
"""The state of format 0 (0.1.0's pickle): read, migrated (`lightning_bohb.session.migrations`), replaced by
`STATE_FILE` at the next save."""
STATE_FILES = (STATE_FILE, LEGACY_STATE_FILE)
SUMMARY_FILE = "session_state.summary.yaml"
LOCK_FILE = "session.lock"
"""The owner record (JSON)."""
OS_LOCK_FILE = "session.flock"
"""The file the driver holds an OS lock on (empty, never deleted)."""
TUNE_FOLDER = "tune"
"""Ray Tune's experiment folder inside the session."""
BEST_CONFIG_FILE = "best_config.yaml"
CONTROL_FILE = "session_control.json"
PAUSE_WITHIN_FILE = "pause_within.json"
REQUESTS_DIR = "requests"
RESUME_LOG = "resume.log"
