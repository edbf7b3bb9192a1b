"""Without a terminal (a batch job), a session prints a line per trial event and a summary line on a timer."""

import re

from e2e_support import ScriptRun, session_dir_of, start_search, write_config


def test_piped_session_prints_trial_lines_and_periodic_summaries(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_BOHB_PROGRESS_EVERY", "2")
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir, min_epoch_seconds=1.5)
    run: ScriptRun = start_search(tmp_path, ["--base-config", str(config), "--max-epochs", "3"])  # stdout is a pipe

    assert run.wait() == 0, run.output[-3000:]
    output = run.output
    session = session_dir_of(tmp_path / "experiments")

    started = re.findall(r"^\d\d:\d\d:\d\d trial (\S+) started: lr=\S+, hidden_size=\d+", output, re.M)
    finished = re.findall(r"^\d\d:\d\d:\d\d trial (\S+) finished after 3 epochs: val_loss=[0-9.e-]+", output, re.M)
    assert len(started) == 2 and sorted(started) == sorted(finished), output[-3000:]

    summaries = re.findall(r"^\d\d:\d\d:\d\d progress: (.*)$", output, re.M)
    assert summaries, output[-3000:]
    shape = (r"\d running, \d/2 done, \d+ epochs?, (best: none yet|best val_loss=\S+ \(trial \S+\)), elapsed \d:\d\d:\d\d"
             r"(, at most \d:\d\d:\d\d left)?; pause: ")
    assert all(re.match(shape, s) for s in summaries), summaries
    assert all("left; pause" in s for s in summaries if "best val_loss=" in s), summaries  # an estimate once an epoch ended
    assert all(s.endswith(f"pause {session}") for s in summaries), summaries[-1]
    assert any("best val_loss=" in s for s in summaries), summaries  # the best so far appears once a trial reported
    assert "\x1b[" not in output  # plain lines, no live table, no colours
