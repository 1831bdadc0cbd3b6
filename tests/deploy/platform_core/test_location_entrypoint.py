"""platform_core.location_entrypoint: a run worker runs in-process with the patches applied; every
other command is exec'd as given. The run containers' use of it is proven end to end by the
compose suite (every run goes through it) and by the pooled-connection test below."""

import subprocess
import sys

import pytest

from platform_core import dagster_patches, location_entrypoint


def test_only_the_run_worker_commands_are_run_in_process():
    assert location_entrypoint.is_run_worker(["dagster", "api", "execute_run", "{}"])
    assert location_entrypoint.is_run_worker(["dagster", "api", "resume_run", "{}"])
    for other in (["dagster", "api", "grpc", "-p", "4000"], ["sh", "-c", "exec dagster api grpc"],
                  ["python", "-m", "ingestion.replay"], ["dagster"], []):
        assert not location_entrypoint.is_run_worker(other), other


def test_other_commands_are_execd_unchanged(monkeypatch):
    calls = []
    monkeypatch.setattr(location_entrypoint.os, "execvp", lambda file, args: calls.append((file, args)))
    location_entrypoint.main(["sh", "-c", "exec dagster api grpc"])
    assert calls == [("sh", ["sh", "-c", "exec dagster api grpc"])]


def test_no_command_is_a_clear_error():
    with pytest.raises(SystemExit, match="no command given"):
        location_entrypoint.main([])


def test_a_run_worker_gets_the_patches_then_dagsters_cli(monkeypatch):
    from dagster import _cli
    from dagster_postgres.run_storage import run_storage

    original = run_storage.create_pg_engine
    for name in dagster_patches.STORAGE_MODULES:  # put Dagster's own back afterwards
        module = __import__(name, fromlist=["create_pg_engine"])
        monkeypatch.setattr(module, "create_pg_engine", module.create_pg_engine)
    ran = []
    monkeypatch.setattr(_cli, "main", lambda: ran.append(list(sys.argv)) or 0)
    with pytest.raises(SystemExit) as exited:
        location_entrypoint.main(["dagster", "api", "execute_run", "{}"])
    assert exited.value.code == 0 and ran == [["dagster", "api", "execute_run", "{}"]]
    assert run_storage.create_pg_engine is not original
    assert getattr(run_storage.create_pg_engine, "__platform_core_patch__", False)


def test_the_entrypoint_passes_a_command_through_as_a_process():
    """As the image runs it: `python -m platform_core.location_entrypoint CMD...`."""
    result = subprocess.run([sys.executable, "-m", "platform_core.location_entrypoint", "sh", "-c", "echo $0 ok", "x"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "x ok"
