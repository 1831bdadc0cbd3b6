"""deploy/ops/backup.py runs on the host with a bare python3 (no venv): it reads its setting
through platform_core from the checkout. The full backup/restore is tests/e2e/test_backup.py."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKUP = REPO_ROOT / "deploy" / "ops" / "backup.py"


def host_python() -> str:
    """The interpreter the venv was made from: no platform_core installed there."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.is_file() else sys.executable


def test_a_malformed_restore_wait_stops_restore_before_anything_changes(tmp_path):
    result = subprocess.run(
        [host_python(), "-I", str(BACKUP), "restore", str(tmp_path / "backups" / "none")],
        env={"PATH": "/usr/bin:/bin", "RESTORE_WAIT_SECONDS": "soon"},
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "RESTORE_WAIT_SECONDS must be a duration in seconds" in result.stderr
    assert "got 'soon'" in result.stderr and "Traceback" not in result.stderr


def test_usage_without_the_venv(tmp_path):
    result = subprocess.run([host_python(), "-I", str(BACKUP)], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "usage: backup.py" in result.stderr, result.stderr
