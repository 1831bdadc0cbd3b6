"""platform_core.settings: every service and location parses its environment by these rules, so
they are pinned here: each kind, bounds, blank = default, errors naming the variable, value and
expectation, and one default per setting."""

import math
import secrets

import pytest

from platform_core import settings
from platform_core.settings import SettingError


@pytest.fixture
def name() -> str:
    """A variable name no other test (or module) declares: the registry lives for the process."""
    return f"TEST_SETTING_{secrets.token_hex(4).upper()}"


def test_unset_and_blank_mean_the_default(name):
    setting = settings.integer(name, 30, minimum=1)
    assert setting.get({}) == 30
    for blank in ("", "   ", "\t\n"):
        assert setting.get({name: blank}) == 30
    assert setting.get({name: " 7 "}) == 7


def test_reads_os_environ_by_default(name, monkeypatch):
    setting = settings.text(name, "fallback")
    assert setting.get() == "fallback"
    monkeypatch.setenv(name, "from the environment")
    assert setting.get() == "from the environment"


@pytest.mark.parametrize("raw", ["seven", "7.0", "1_000", "0x10", "7 days"])
def test_integer_refuses_what_is_not_a_whole_number(name, raw):
    setting = settings.integer(name, 30)
    with pytest.raises(SettingError) as raised:
        setting.get({name: raw})
    assert str(raised.value) == f"{name} must be a whole number, got {raw!r}"


def test_integer_bounds_are_named_in_the_error(name):
    days = settings.integer(name, 30, minimum=1)
    with pytest.raises(SettingError, match=f"^{name} must be a whole number >= 1, got '0'$"):
        days.get({name: "0"})
    port = settings.integer(name + "_PORT", None, minimum=1, maximum=65535)
    assert port.get({}) is None
    assert port.get({name + "_PORT": "65535"}) == 65535
    with pytest.raises(SettingError, match="between 1 and 65535, got '65536'"):
        port.get({name + "_PORT": "65536"})
    capped = settings.integer(name + "_CAP", 5, maximum=10)
    with pytest.raises(SettingError, match="<= 10, got '11'"):
        capped.get({name + "_CAP": "11"})


def test_number_is_finite_and_bounded(name):
    setting = settings.number(name, 60, minimum=0)
    assert setting.get({}) == 60.0 and isinstance(setting.get({}), float)
    assert setting.get({name: "1.5"}) == 1.5
    assert setting.get({name: "2e1"}) == 20.0
    for raw in ("nan", "inf", "-inf", "soon", "-0.5"):
        with pytest.raises(SettingError) as raised:
            setting.get({name: raw})
        assert str(raised.value) == f"{name} must be a finite number >= 0, got {raw!r}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("90", 90.0), ("1.5", 1.5), ("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0),
     ("0", 0.0), (" 5 m ", 300.0), ("2H", 7200.0), (".5", 0.5)],
)
def test_seconds_accepts_plain_numbers_and_units(name, raw, expected):
    assert settings.seconds(name, 15).get({name: raw}) == expected


@pytest.mark.parametrize("raw", ["-1", "5 minutes", "1w", "m", "nan", "inf", "1e400", "soon"])
def test_seconds_refuses_negative_and_unknown_units(name, raw):
    with pytest.raises(SettingError) as raised:
        settings.seconds(name, 15).get({name: raw})
    message = str(raised.value)
    assert message.startswith(f"{name} must be a duration in seconds") and message.endswith(f"got {raw!r}")
    assert ">= 0" in message


def test_seconds_minimum_can_be_raised_or_dropped(name):
    assert settings.seconds(name, 15, minimum=None).get({name: "-5"}) == -5.0
    with pytest.raises(SettingError, match=">= 1, got '0.5'"):
        settings.seconds(name + "_MIN", 15, minimum=1).get({name + "_MIN": "0.5"})


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "Yes", "on", " On "])
def test_boolean_true(name, raw):
    assert settings.boolean(name, False).get({name: raw}) is True


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "NO", "off"])
def test_boolean_false(name, raw):
    assert settings.boolean(name, True).get({name: raw}) is False


def test_boolean_refuses_anything_else(name):
    setting = settings.boolean(name, True)
    assert setting.get({name: " "}) is True
    with pytest.raises(SettingError) as raised:
        setting.get({name: "maybe"})
    assert str(raised.value) == f"{name} must be true or false (or 1/0, yes/no, on/off), got 'maybe'"


def test_text_is_stripped_and_optional(name):
    setting = settings.text(name)
    assert setting.get({}) is None and setting.get({name: "  "}) is None
    assert setting.get({name: "  /data/landing \n"}) == "/data/landing"


def test_required_text_names_the_variable_when_unset_or_blank(name):
    setting = settings.text(name, required=True, doc="the landing directory")
    with pytest.raises(SettingError) as raised:
        setting.get({})
    assert str(raised.value) == (f"{name} must be set to a non-blank value (the landing directory), "
                                 "got nothing (it is not set)")
    with pytest.raises(SettingError, match=rf"{name} .*got '  ' \(empty\)"):
        setting.get({name: "  "})
    assert setting.get({name: "x"}) == "x"
    with pytest.raises(SettingError, match="no default"):
        settings.text(name + "_B", "default", required=True)


def test_declared_lists_every_setting_once(name):
    first = settings.integer(name, 30, minimum=1, doc="why it exists")
    assert settings.declared()[name] is first
    assert first.name == name and first.kind == "integer" and first.default == 30 and first.doc == "why it exists"
    # A module imported twice (importlib loads, tests) declares the same thing again: fine.
    assert settings.integer(name, 30, minimum=1, doc="worded differently") is first
    declared = settings.declared()
    declared.pop(name)
    assert name in settings.declared()  # a copy: callers cannot unregister


def test_a_second_default_is_refused_naming_both(name):
    settings.integer(name, 30, minimum=1)
    with pytest.raises(SettingError) as raised:
        settings.integer(name, 7, minimum=1)
    message = str(raised.value)
    assert f"{name} declared twice with different defaults" in message
    assert "default 30" in message and "default 7" in message
    assert message.count("test_settings") == 2  # where each declaration is
    with pytest.raises(SettingError, match="declared twice with different defaults"):
        settings.seconds(name, 30)  # another kind
    with pytest.raises(SettingError, match="declared twice with different rules"):
        settings.integer(name, 30, minimum=0)
    assert settings.declared()[name].minimum == 1  # the first declaration stands


def test_defaults_are_normalized_and_checked_at_declaration(name):
    assert settings.seconds(name, 15).default == 15.0
    assert settings.seconds(name, 15.0).default == 15.0  # the same declaration
    for bad in (lambda: settings.integer(name + "_A", 0, minimum=1),
                lambda: settings.integer(name + "_B", 1.5),
                lambda: settings.number(name + "_C", math.inf),
                lambda: settings.seconds(name + "_D", -1),
                lambda: settings.boolean(name + "_E", "yes"),
                lambda: settings.text(name + "_F", 5)):
        with pytest.raises(SettingError, match="declared default"):
            bad()
