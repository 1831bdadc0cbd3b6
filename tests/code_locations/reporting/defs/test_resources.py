"""Reporting resources: env wiring and atomic report writes."""

import os
import stat

import pytest
from dagster import EnvVar

from reporting.defs.resources import ReportsDirectory, build_resources


def test_reports_dir_comes_from_envvar(monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    resources = build_resources()
    assert resources["reports_dir"].path == EnvVar("REPORTS_DIR")
    assert resources["reports_dir"].process_config_and_initialize().path == str(tmp_path)
    assert resources["io_manager"].warehouse is resources["warehouse"]
    assert "webhook" not in resources  # the run-failure alert is the platform location's


# --- ReportsDirectory -------------------------------------------------------------------------


def test_write_creates_directories_and_leaves_no_temp_files(tmp_path):
    target_dir = tmp_path / "a" / "b"
    reports = ReportsDirectory(path=str(target_dir))
    path = reports.write_atomically("r.md", b"first")
    assert path == target_dir / "r.md" and path.read_bytes() == b"first"
    reports.write_atomically("r.md", b"second")
    assert path.read_bytes() == b"second"
    assert os.listdir(target_dir) == ["r.md"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    reports = ReportsDirectory(path=str(tmp_path))
    (tmp_path / "busy").mkdir()  # a directory where the file should go: the rename fails
    (tmp_path / "busy" / "x").write_text("keep")
    with pytest.raises(OSError):
        reports.write_atomically("busy", b"new")
    assert sorted(os.listdir(tmp_path)) == ["busy"]
    assert (tmp_path / "busy" / "x").read_text() == "keep"


@pytest.mark.parametrize(
    ("path", "name", "message"),
    [
        ("", "r.md", "REPORTS_DIR is empty"),
        ("relative/dir", "r.md", "REPORTS_DIR must be an absolute path"),
        ("/tmp", "../escape.md", "plain file name"),
    ],
)
def test_bad_settings_are_named(path, name, message):
    with pytest.raises(ValueError, match=message):
        ReportsDirectory(path=path).write_atomically(name, b"x")
