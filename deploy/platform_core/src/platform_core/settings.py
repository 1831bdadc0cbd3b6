"""Settings from the environment, one set of rules for every service and location.

Each module declares the variables it reads once, at module level, so every setting has one
default in one place and `declared()` can list them all. Unset and blank (whitespace only) are
the same thing: "not set", i.e. the default, because compose passes `${NAME:-}` as "" and an
operator who blanks a line in .env means "no override". Surrounding whitespace is ignored.
A bad value raises SettingError naming the variable, the value and what was expected."""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([smhd]?)$")
_INTEGER = re.compile(r"^[+-]?\d+$")

_registry: dict[str, Setting] = {}
_lock = threading.Lock()


class SettingError(ValueError):
    """message always names the variable, the bad value and what is expected"""


@dataclass(frozen=True)
class Setting:
    """One variable: how it parses and its one default (None: no default, the caller decides)."""

    name: str
    kind: str  # integer | number | seconds | boolean | text
    default: object
    doc: str = field(default="", compare=False)  # a re-declaration may word it differently
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    # Where it was declared, for the "declared twice" message; not part of its identity.
    origin: str = field(default="?", compare=False)

    def get(self, env: Mapping[str, str] | None = None):
        raw = (os.environ if env is None else env).get(self.name)
        value = None if raw is None else raw.strip()
        if not value:
            if self.required:
                why = f" ({self.doc})" if self.doc else ""
                got = "nothing (it is not set)" if raw is None else f"{raw!r} (empty)"
                raise SettingError(f"{self.name} must be set to a non-blank value{why}, got {got}")
            return self.default
        return _PARSERS[self.kind](self, value)

    def expected(self) -> str:
        """What a valid value looks like, as the error messages say it."""
        what = {
            "integer": "a whole number",
            "number": "a finite number",
            "seconds": "a duration in seconds (90, 1.5, 90s, 5m, 2h or 1d)",
            "boolean": "true or false (or 1/0, yes/no, on/off)",
            "text": "text",
        }[self.kind]
        return what + _bounds(self.minimum, self.maximum)

    def describe(self) -> str:
        default = "required" if self.required else f"default {self.default!r}"
        bounds = _bounds(self.minimum, self.maximum)
        return f"{self.kind}, {default}" + (f",{bounds}" if bounds else "")


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f" >= {minimum:g}"
    if maximum is not None:
        return f" <= {maximum:g}"
    return ""


def _bad(setting: Setting, raw: str) -> SettingError:
    return SettingError(f"{setting.name} must be {setting.expected()}, got {raw!r}")


def _bounded(setting: Setting, value, raw: str):
    if (setting.minimum is not None and value < setting.minimum) or (
        setting.maximum is not None and value > setting.maximum
    ):
        raise _bad(setting, raw)
    return value


def _parse_integer(setting: Setting, raw: str) -> int:
    if not _INTEGER.match(raw):  # int() would also take "1_000" and " 7"
        raise _bad(setting, raw)
    return _bounded(setting, int(raw), raw)


def _parse_number(setting: Setting, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _bad(setting, raw) from None
    if not math.isfinite(value):
        raise _bad(setting, raw)
    return _bounded(setting, value, raw)


def _parse_seconds(setting: Setting, raw: str) -> float:
    match = _DURATION.match(raw.lower())
    if not match:
        raise _bad(setting, raw)
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value):
        raise _bad(setting, raw)
    return _bounded(setting, value, raw)


def _parse_boolean(setting: Setting, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _bad(setting, raw)


def _parse_text(setting: Setting, raw: str) -> str:
    return raw


_PARSERS = {
    "integer": _parse_integer,
    "number": _parse_number,
    "seconds": _parse_seconds,
    "boolean": _parse_boolean,
    "text": _parse_text,
}


def _caller() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_globals.get('__name__', '?')}:{frame.f_lineno}"


def _checked_default(setting: Setting):
    """The default in the kind's own type: a default its own rules refuse would otherwise
    surface only on the day the variable is unset."""
    default = setting.default
    if default is None:
        return None
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    ok = {
        "integer": isinstance(default, int) and not isinstance(default, bool),
        "number": numeric and math.isfinite(default),
        "seconds": numeric and math.isfinite(default),
        "boolean": isinstance(default, bool),
        "text": isinstance(default, str),
    }[setting.kind]
    if ok and setting.kind in ("integer", "number", "seconds"):
        default = float(default) if setting.kind != "integer" else default
        ok = not ((setting.minimum is not None and default < setting.minimum)
                  or (setting.maximum is not None and default > setting.maximum))
    if not ok:
        raise SettingError(f"{setting.name}: declared default {setting.default!r} is not {setting.expected()}")
    return default


def _declare(setting: Setting) -> Setting:
    setting = replace(setting, default=_checked_default(setting))
    with _lock:
        existing = _registry.get(setting.name)
        if existing is None:
            _registry[setting.name] = setting
            return setting
        if existing == setting:  # the same declaration again (a module imported twice)
            return existing
        what = "defaults" if (existing.kind, existing.default) != (setting.kind, setting.default) else "rules"
        raise SettingError(
            f"{setting.name} declared twice with different {what}: {existing.describe()} "
            f"({existing.origin}) and {setting.describe()} ({setting.origin}); declare it in one "
            "module and import it from there"
        )


def integer(name: str, default: int | None, *, minimum: int | None = None, maximum: int | None = None,
            doc: str = "") -> Setting:
    return _declare(Setting(name, "integer", default, doc, minimum, maximum, origin=_caller()))


def number(name: str, default: float | None, *, minimum: float | None = None, maximum: float | None = None,
           doc: str = "") -> Setting:
    return _declare(Setting(name, "number", default, doc, minimum, maximum, origin=_caller()))


def seconds(name: str, default: float | None, *, minimum: float | None = 0, doc: str = "") -> Setting:
    return _declare(Setting(name, "seconds", default, doc, minimum, origin=_caller()))


def boolean(name: str, default: bool | None, *, doc: str = "") -> Setting:
    return _declare(Setting(name, "boolean", default, doc, origin=_caller()))


def text(name: str, default: str | None = None, *, required: bool = False, doc: str = "") -> Setting:
    if required and default is not None:
        raise SettingError(f"{name}: a required setting has no default, got {default!r}")
    return _declare(Setting(name, "text", default, doc, required=required, origin=_caller()))


def declared() -> dict[str, Setting]:
    with _lock:
        return dict(_registry)
