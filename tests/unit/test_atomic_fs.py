"""The filesystem Ray Tune writes sessions through: whole files or the previous ones, never half."""

import contextlib
import errno
import os
import stat
from pathlib import Path

import cloudpickle
import pyarrow.fs
import pytest

from lightning_bohb._ray.atomic_fs import atomic_storage_filesystem
from lightning_bohb.utils import files


def _upload(fs, source_dir, target_dir):
    pyarrow.fs.copy_files(str(source_dir), str(target_dir), destination_filesystem=fs)


def test_copy_replaces_files_and_survives_pickling(tmp_path):
    staging, target = tmp_path / "staging", tmp_path / "session"
    (staging / "trial").mkdir(parents=True)
    (staging / "experiment_state.json").write_text('{"step": 1}')
    (staging / "trial" / "result.json").write_text("{}\n")
    fs = cloudpickle.loads(cloudpickle.dumps(atomic_storage_filesystem()))  # as Ray ships it to trials
    _upload(fs, staging, target)
    (staging / "experiment_state.json").write_text('{"step": 2}')
    _upload(fs, staging, target)
    assert (target / "experiment_state.json").read_text() == '{"step": 2}'
    assert sorted(os.listdir(target)) == ["experiment_state.json", "trial"]  # no temporary file left


def _uploaded_then_changed(tmp_path, name, new):
    """A session holding ``name`` as b"previous", and a staging copy of it changed to ``new``."""
    staging, target = tmp_path / "staging", tmp_path / "session"
    staging.mkdir()
    (staging / name).write_bytes(b"previous")
    fs = atomic_storage_filesystem()
    _upload(fs, staging, target)
    (staging / name).write_bytes(new)
    return fs, staging, target


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    fs, staging, target = _uploaded_then_changed(tmp_path, "experiment_state.json", b"new" * 100_000)

    real_fdopen = files.os.fdopen

    class FillingDisk:
        def __init__(self, *args, **kwargs):
            self.file = real_fdopen(*args, **kwargs)
            self.close, self.fileno = self.file.close, self.file.fileno

        @property
        def closed(self):
            return self.file.closed

        def write(self, data):
            self.file.write(data[:10])  # part of the file is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", FillingDisk)
    with pytest.raises(OSError, match="No space left"):
        _upload(fs, staging, target)
    assert (target / "experiment_state.json").read_bytes() == b"previous"
    assert os.listdir(target) == ["experiment_state.json"]


def test_an_io_error_as_data_reaches_the_disk_is_reported_by_the_copy(tmp_path, monkeypatch):
    fs, staging, target = _uploaded_then_changed(tmp_path, "checkpoint.ckpt", b"new")

    def failing_disk(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "fsync", failing_disk)
    with pytest.raises(OSError, match="Input/output error"):  # pyarrow's copy drops errors raised by close()
        _upload(fs, staging, target)
    assert (target / "checkpoint.ckpt").read_bytes() == b"previous"
    assert os.listdir(target) == ["checkpoint.ckpt"]


def test_a_file_left_open_by_a_crash_never_appears(tmp_path):
    handle = files.AtomicFile(str(tmp_path / "state.json"))
    handle.write(b'{"half": ')
    assert not (tmp_path / "state.json").exists()  # until close, only the temporary file exists
    with pytest.raises(RuntimeError):
        with handle:
            raise RuntimeError("crash mid-write")
    assert os.listdir(tmp_path) == []


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_fdopen = files.os.fdopen

    class ShortWrites:  # what an unbuffered file may do: take only part of each write
        def __init__(self, *args, **kwargs):
            self.file = real_fdopen(*args, **kwargs)
            self.close, self.fileno, self.tell = self.file.close, self.file.fileno, self.file.tell

        @property
        def closed(self):
            return self.file.closed

        def write(self, data):
            return self.file.write(data[:7])

    monkeypatch.setattr(files.os, "fdopen", ShortWrites)
    files.atomic_write(tmp_path / "state.bin", b"0123456789" * 10)
    assert (tmp_path / "state.bin").read_bytes() == b"0123456789" * 10


def test_folders_made_through_the_session_filesystem_are_owner_only(tmp_path):
    fs = atomic_storage_filesystem()
    pyarrow.fs.copy_files(str(Path(__file__)), str(tmp_path / "tune" / "trial_1" / "checkpoint_000000" / "x.py"),
                          source_filesystem=pyarrow.fs.LocalFileSystem(), destination_filesystem=fs)
    fs.create_dir(str(tmp_path / "tune" / "trial_2" / "deep"), recursive=True)
    made = [p for p in (tmp_path / "tune").rglob("*")]
    assert made and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in made), [(p, oct(p.stat().st_mode)) for p in made]


def _count_fsyncs(monkeypatch, fail=False):
    """Count `os.fsync` calls made by `AtomicFile` (and fail each one with EIO if ``fail``)."""
    calls = []
    real_fsync = files.os.fsync

    def fsync(fd):
        calls.append(fd)
        if fail:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    return calls


def test_a_file_copied_in_many_chunks_is_fsynced_once(tmp_path, monkeypatch):
    staging, target = tmp_path / "staging", tmp_path / "session"
    staging.mkdir()
    data = os.urandom(5 * files.SYNC_UNIT + 3)  # pyarrow copies 1 MiB at a time: six writes
    (staging / "checkpoint.ckpt").write_bytes(data)
    calls = _count_fsyncs(monkeypatch)
    _upload(atomic_storage_filesystem(), staging, target)
    assert len(calls) == 1
    assert (target / "checkpoint.ckpt").read_bytes() == data


def test_an_io_error_in_the_last_chunk_of_a_large_file_is_reported_by_the_copy(tmp_path, monkeypatch):
    fs, staging, target = _uploaded_then_changed(tmp_path, "checkpoint.ckpt", b"n" * (3 * files.SYNC_UNIT + 1))
    calls = _count_fsyncs(monkeypatch, fail=True)
    with pytest.raises(OSError, match="Input/output error"):
        _upload(fs, staging, target)
    assert len(calls) == 1  # at the last chunk, not at every one
    assert (target / "checkpoint.ckpt").read_bytes() == b"previous"
    assert os.listdir(target) == ["checkpoint.ckpt"]


def test_a_file_of_whole_chunks_whose_fsync_fails_never_replaces_the_previous(tmp_path, monkeypatch):
    # No short last chunk: the fsync happens at close, whose errors pyarrow's copy drops; the file stays out of place.
    fs, staging, target = _uploaded_then_changed(tmp_path, "checkpoint.ckpt", b"n" * (2 * files.SYNC_UNIT))
    calls = _count_fsyncs(monkeypatch, fail=True)
    with contextlib.suppress(OSError):
        _upload(fs, staging, target)
    assert len(calls) == 1
    assert (target / "checkpoint.ckpt").read_bytes() == b"previous"
    assert os.listdir(target) == ["checkpoint.ckpt"]


def test_close_reports_a_failed_fsync_to_direct_writers(tmp_path, monkeypatch):
    handle = files.AtomicFile(tmp_path / "state.bin")
    handle.write(b"x" * files.SYNC_UNIT)
    _count_fsyncs(monkeypatch, fail=True)
    with pytest.raises(OSError, match="Input/output error"):
        handle.close()
    assert os.listdir(tmp_path) == []


def test_rays_checkpoint_upload_fsyncs_once_and_reports_the_error(tmp_path, monkeypatch):
    from ray.train._internal.storage import _pyarrow_fs_copy_files  # what persist_current_checkpoint calls

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "checkpoint.ckpt").write_bytes(b"\0" * (64 * files.SYNC_UNIT + 5))  # Ray copies 64 MiB chunks
    calls = _count_fsyncs(monkeypatch)
    _pyarrow_fs_copy_files(str(staging), str(tmp_path / "ok"), destination_filesystem=atomic_storage_filesystem())
    assert len(calls) == 1 and (tmp_path / "ok" / "checkpoint.ckpt").stat().st_size == 64 * files.SYNC_UNIT + 5
    _count_fsyncs(monkeypatch, fail=True)
    with pytest.raises(OSError, match="Input/output error"):
        _pyarrow_fs_copy_files(str(staging), str(tmp_path / "failed"), destination_filesystem=atomic_storage_filesystem())
    assert os.listdir(tmp_path / "failed") == []


def _same_filesystem_upload(tmp_path, folder_name, data):
    """What Ray does with a checkpoint reported with the session's own filesystem: a copy inside it."""
    from ray.train._internal.storage import _pyarrow_fs_copy_files

    fs = atomic_storage_filesystem()
    source = tmp_path / "trial" / folder_name
    source.mkdir(parents=True)
    (source / "checkpoint.ckpt").write_bytes(data)
    target = tmp_path / "trial" / "checkpoint_000000"
    fs.create_dir(str(target))
    _pyarrow_fs_copy_files(str(source), str(target), source_filesystem=fs, destination_filesystem=fs)
    return source / "checkpoint.ckpt", target / "checkpoint.ckpt"


def test_a_staged_checkpoint_is_linked_into_place_after_one_fsync(tmp_path, monkeypatch):
    from lightning_bohb.utils.files import STAGING_FOLDER

    calls = _count_fsyncs(monkeypatch)
    staged, placed = _same_filesystem_upload(tmp_path, STAGING_FOLDER, b"weights" * 1000)
    assert len(calls) == 1
    assert placed.read_bytes() == b"weights" * 1000 and os.path.samefile(staged, placed)  # no data copied
    assert os.listdir(placed.parent) == ["checkpoint.ckpt"]
    staged.unlink()  # what the report callback does next
    assert placed.read_bytes() == b"weights" * 1000


def test_other_copies_inside_the_session_are_atomic_copies(tmp_path, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    source, placed = _same_filesystem_upload(tmp_path, "elsewhere", b"log line\n")
    assert len(calls) == 1 and placed.read_bytes() == b"log line\n" and not os.path.samefile(source, placed)
    assert os.listdir(placed.parent) == ["checkpoint.ckpt"]


@pytest.mark.parametrize("folder", [".checkpoint_staging", "elsewhere"])
def test_an_io_error_in_a_copy_inside_the_session_reaches_the_copy(tmp_path, monkeypatch, folder):
    _count_fsyncs(monkeypatch, fail=True)
    with pytest.raises(OSError, match="Input/output error"):
        _same_filesystem_upload(tmp_path, folder, b"weights")
    assert os.listdir(tmp_path / "trial" / "checkpoint_000000") == []


def test_the_report_callback_stages_checkpoints_only_on_the_session_filesystem():
    from lightning_bohb.callbacks.tune_report_callback import _links_staged_files

    assert _links_staged_files(cloudpickle.loads(cloudpickle.dumps(atomic_storage_filesystem())))  # as trials get it
    assert not _links_staged_files(pyarrow.fs.LocalFileSystem())  # Ray's default: a temporary folder, copied


def test_a_killed_trials_staged_checkpoint_is_removed_with_the_temporary_files(tmp_path):
    staging = tmp_path / "tune" / "trial_1" / files.STAGING_FOLDER
    staging.mkdir(parents=True)
    (staging / "checkpoint.ckpt").write_bytes(b"half a checkpoint")
    (tmp_path / "tune" / "trial_1" / "checkpoint_000000").mkdir()
    files.remove_abandoned_temp_files(tmp_path)
    assert sorted(os.listdir(tmp_path / "tune" / "trial_1")) == ["checkpoint_000000"]
