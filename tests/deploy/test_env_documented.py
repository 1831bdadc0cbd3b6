""".env.example documents every variable compose or the code reads, with the default the code
actually has, and nothing else; each default is written in one place.

Read = `${NAME...}` in docker-compose.yml and the generated compose.locations.yaml, every
setting declared through platform_core.settings, `EnvVar("NAME")` in the locations, `{env: NAME}`
in dagster.yaml, `${NAME:-...}` in the gateway's scripts, and any direct os.environ read."""

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from platform_core import locations, locations_compose, settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
INTERNAL_MARKER = "# --- Set by the stack itself"
DOC_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(\S*)")
COMPOSE_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}")
SHELL_DEFAULT = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}")
ENVVAR = re.compile(r"EnvVar(?:\.int)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']")
DAGSTER_YAML_ENV = re.compile(r"\{env:\s*([A-Z][A-Z0-9_]*)\}")
DIRECT_READ = re.compile(r"os\.environ(?:\.get)?[\[(]\s*[\"']([A-Z][A-Z0-9_]*)[\"']|getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']")
# Scripts run as files (not installed modules) that declare settings.
SCRIPTS = ["deploy/docker/render_dagster_yaml.py", "deploy/docker/daemon_healthcheck.py",
           "deploy/docker/webserver_launcher.py", "deploy/ops/platform_status.py",
           "deploy/ops/platform_watchdog.py", "deploy/ops/backup.py"]
# Shell scripts that read settings: the gateway's, and Postgres' first-start script.
SHELL_SCRIPTS = ["deploy/gateway/gateway-entrypoint", "deploy/gateway/gateway-lib.sh", "deploy/gateway/gateway-users",
                 *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "deploy/postgres/initdb").glob("*.sh")))]


def documented() -> tuple[dict[str, str], set[str]]:
    """name -> documented default, and the names of the 'set by the stack' section."""
    defaults: dict[str, str] = {}
    internal: set[str] = set()
    in_internal = False
    for line in ENV_EXAMPLE.read_text().splitlines():
        in_internal = in_internal or line.startswith(INTERNAL_MARKER)
        match = DOC_LINE.match(line)
        if match:
            assert match.group(1) not in defaults, f".env.example lists {match.group(1)} twice"
            defaults[match.group(1)] = match.group(2)
            if in_internal:
                internal.add(match.group(1))
    return defaults, internal


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def compose_texts() -> dict[str, str]:
    return {"docker-compose.yml": _without_comments((ROOT / "docker-compose.yml").read_text()),
            locations_compose.OUTPUT: _without_comments(locations_compose.render(ROOT))}


def compose_reads() -> dict[str, set[str]]:
    """name -> the non-empty defaults compose writes for it (empty: passed through or required)."""
    found: dict[str, set[str]] = {}
    for text in compose_texts().values():
        for name, dash, default, _ in COMPOSE_VAR.findall(text):
            found.setdefault(name, set())
            if dash and default:
                found[name].add(default)
    top = re.search(r"^name:\s*(\S+)", (ROOT / "docker-compose.yml").read_text(), re.MULTILINE)
    found.setdefault("COMPOSE_PROJECT_NAME", set()).add(top.group(1))
    return found


def declared_settings() -> dict[str, settings.Setting]:
    for location in locations.load(ROOT):
        importlib.import_module(location.definitions_module)
    importlib.import_module("ingestion.replay")
    for module in ("daemon_health", "dagster_storage", "dev_server", "project"):
        importlib.import_module(f"platform_core.{module}")
    for script in SCRIPTS:
        name = f"script_{Path(script).stem}"
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    # Only the repository's own declarations: tests declare settings of their own (test_settings).
    return {name: setting for name, setting in settings.declared().items()
            if "test" not in setting.origin.split(":")[0].split(".")[-1]}


def shell_defaults() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for script in SHELL_SCRIPTS:
        for name, default in SHELL_DEFAULT.findall((ROOT / script).read_text()):
            found.setdefault(name, set()).add(default)
    return found


def python_sources() -> list[Path]:
    roots = [ROOT / "deploy", *(ROOT / location.path / "src" for location in locations.load(ROOT))]
    return [p for root in roots for p in root.rglob("*.py")
            if "location_template" not in p.parts and p.name != "settings.py"]


def code_reads() -> set[str]:
    names: set[str] = set()
    for path in python_sources():
        text = path.read_text()
        names |= set(ENVVAR.findall(text))
        names |= {a or b for a, b in DIRECT_READ.findall(text)}
    names |= set(DAGSTER_YAML_ENV.findall(_without_comments((ROOT / "dagster.yaml").read_text())))
    for location in locations.load(ROOT):  # what each location's code is given, by name
        names |= set(location.env) | set(location.code_server_env)
    return names


@pytest.fixture(scope="module")
def docs():
    return documented()


@pytest.fixture(scope="module")
def declared():
    return declared_settings()


@pytest.fixture(scope="module")
def read(declared) -> set[str]:
    return set(compose_reads()) | set(declared) | set(shell_defaults()) | code_reads()


def test_every_variable_read_is_documented(docs, read):
    missing = sorted(read - set(docs[0]))
    assert not missing, f"read by compose or the code but not in .env.example: {missing}"


def test_every_documented_variable_is_read(docs, read):
    unused = sorted(set(docs[0]) - read)
    assert not unused, f"in .env.example but read by nothing: {unused}"


def test_compose_writes_each_default_once_and_as_documented(docs):
    defaults, internal = docs
    for name, written in compose_reads().items():
        assert len(written) <= 1, f"compose gives {name} different defaults: {sorted(written)}"
        if written and name not in internal:
            assert defaults[name] == next(iter(written)), (
                f"{name}: .env.example says {defaults[name]!r}, compose's default is {next(iter(written))!r}")


def test_code_defaults_are_as_documented(docs, declared):
    defaults, internal = docs
    for name, setting in declared.items():
        if name in internal or setting.required:
            continue
        documented_value = defaults[name]
        if setting.default is None:
            assert documented_value == "", f"{name} has no default in the code; .env.example says {documented_value!r}"
        else:
            parsed = setting.get({name: documented_value})
            assert parsed == setting.default, (
                f"{name}: .env.example says {documented_value!r}, the code's default is {setting.default!r}")


def test_shell_defaults_are_as_documented(docs):
    defaults, _ = docs
    for name, written in shell_defaults().items():
        assert written == {defaults[name]}, f"{name}: gateway scripts default {sorted(written)}, .env.example {defaults[name]!r}"


def test_no_variable_has_a_default_in_two_places(declared):
    """A program's setting is passed through by compose as ${NAME:-}: its default lives in the code."""
    compose = compose_reads()
    twice = sorted(name for name, written in compose.items()
                   if written and name != "COMPOSE_PROJECT_NAME"
                   and ((name in declared and declared[name].default is not None) or name in shell_defaults()))
    assert not twice, f"default written in compose and in the code: {twice}"


def test_the_checks_catch_an_undocumented_and_an_unread_variable(docs, read):
    """The guards themselves, fed a .env.example with one line dropped and one made up."""
    defaults, internal = docs
    dropped = ({k: v for k, v in defaults.items() if k != "GATEWAY_PORT"}, internal)
    with pytest.raises(AssertionError, match="GATEWAY_PORT"):
        test_every_variable_read_is_documented(dropped, read)
    invented = ({**defaults, "NOBODY_READS_THIS": "1"}, internal)
    with pytest.raises(AssertionError, match="NOBODY_READS_THIS"):
        test_every_documented_variable_is_read(invented, read)
