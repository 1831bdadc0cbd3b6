"""The preflight refuses the placeholder passwords of .env.example, naming each, and passes real ones."""

import re
from pathlib import Path

from platform_core import preflight

ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"
REAL = {"POSTGRES_PASSWORD": "Zq3-real-one-1", "DAGSTER_PG_PASSWORD": "Zq3-real-two-2", "WAREHOUSE_PASSWORD": "Zq3-real-3"}


def test_real_passwords_pass():
    assert preflight.problems(REAL) == []


def test_the_placeholders_of_env_example_are_refused_by_name():
    shipped = dict(re.findall(r"^([A-Z_]+_PASSWORD)=(\S+)$", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert set(shipped) == set(REAL)
    found = preflight.problems(shipped)
    assert len(found) == 3
    for name, message in zip(("POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD", "WAREHOUSE_PASSWORD"), found):
        assert message.startswith(f"{name} is the placeholder of .env.example")
        assert shipped[name] not in message  # never echo a whole secret


def test_one_placeholder_among_real_ones_is_named_alone():
    found = preflight.problems({**REAL, "WAREHOUSE_PASSWORD": "CHANGE-ME-please"})
    assert len(found) == 1 and found[0].startswith("WAREHOUSE_PASSWORD")


def test_a_missing_password_is_named():
    env = {k: v for k, v in REAL.items() if k != "DAGSTER_PG_PASSWORD"}
    [message] = preflight.problems(env)
    assert "DAGSTER_PG_PASSWORD" in message and "not set" in message


def test_main_exits_non_zero_with_how_to_generate(monkeypatch, capsys):
    for name, value in {**REAL, "POSTGRES_PASSWORD": "change-me-superuser"}.items():
        monkeypatch.setenv(name, value)
    assert preflight.main() == 1
    err = capsys.readouterr().err
    assert "POSTGRES_PASSWORD" in err and "make prepare" in err and "change-me-superuser" not in err
