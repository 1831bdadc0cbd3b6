"""Copies of the repository's registry (and, where a test needs them, its sources) for the
platform_core tests that write: the checkout itself is never changed by a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
# What `new`, `remove` and `render` read: the registry, the root compose file (its template
# services and image defaults), the lock (names already taken) and the location template.
REGISTRY_FILES = ["dg.toml", "docker-compose.yml", "uv.lock"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def registered_folders() -> list[str]:
    import tomllib

    return [entry["path"] for entry in tomllib.loads((REPO / "dg.toml").read_text())["workspace"]["projects"]]


def copy_registry(target: Path) -> Path:
    """dg.toml, docker-compose.yml, uv.lock, each registered location's pyproject.toml and the
    location template: enough for locations, locations_compose and location_scaffold."""
    for name in REGISTRY_FILES:
        shutil.copy2(REPO / name, target / name)
    for folder in registered_folders():
        (target / folder).mkdir(parents=True)
        shutil.copy2(REPO / folder / "pyproject.toml", target / folder / "pyproject.toml")
    shutil.copytree(REPO / "deploy" / "location_template", target / "deploy" / "location_template", ignore=IGNORE)
    return target


def copy_sources(target: Path) -> Path:
    """The registry plus every location's sources (code_locations/*) and platform_core's own, so
    the CLI can run in the copy: `PYTHONPATH=<copy>/deploy/platform_core/src`."""
    for name in REGISTRY_FILES:
        shutil.copy2(REPO / name, target / name)
    shutil.copytree(REPO / "code_locations", target / "code_locations", ignore=IGNORE)
    shutil.copytree(REPO / "deploy" / "location_template", target / "deploy" / "location_template", ignore=IGNORE)
    shutil.copytree(REPO / "deploy" / "platform_core" / "src", target / "deploy" / "platform_core" / "src", ignore=IGNORE)
    (target / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    return target


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                             "-c", "commit.gpgsign=false", *args], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def commit_all(root: Path, message: str = "copy") -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (but .git) with its bytes: 'nothing changed' compares two of these."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file() and ".git" not in path.relative_to(root).parts}


def cli(root: Path, *args: str, stdlib_only: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m platform_core.cli ARGS` in the copy, with the copy's platform_core first on the path
    (so repo_root() is the copy's, not this checkout's). stdlib_only runs it as the Makefile does
    with a bare python3: no site-packages at all (-S)."""
    env = {**os.environ, "PYTHONPATH": str(root / "deploy" / "platform_core" / "src")}
    command = [sys.executable, *(["-S"] if stdlib_only else []), "-m", "platform_core.cli", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def copy_platform_core(root: Path) -> None:
    """The CLI's own package, for copies made with copy_registry."""
    shutil.copytree(REPO / "deploy" / "platform_core" / "src", root / "deploy" / "platform_core" / "src", ignore=IGNORE)


PROJECT = """\
[project]
name = "{package}"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "{module}"
code_location_name = "{name}"
"""


def add_project(root: Path, folder: str, text: str) -> Path:
    """A project folder with this pyproject.toml, registered at the end of dg.toml."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "pyproject.toml").write_text(text)
    with (root / "dg.toml").open("a") as registry:
        registry.write(f'\n[[workspace.projects]]\npath = "{folder}"\n')
    return root / folder / "pyproject.toml"


def project(name="sales", module=None, package=None, deploy="") -> str:
    return PROJECT.format(name=name, module=module or name, package=package or name) + deploy


class Reset:
    """compose's `!reset` tag, kept as what it wraps."""

    def __init__(self, value) -> None:
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, Reset) and other.value == self.value

    def __repr__(self) -> str:
        return f"!reset {self.value!r}"


class ComposeLoader(yaml.SafeLoader):
    pass


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    if isinstance(node, yaml.SequenceNode):
        return Reset(loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Reset(loader.construct_mapping(node))
    return Reset(loader.construct_scalar(node))


ComposeLoader.add_constructor("!reset", _reset)


def load_compose(text: str) -> dict:
    return yaml.load(text, Loader=ComposeLoader)
