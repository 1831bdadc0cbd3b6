"""No secret in what git would commit: only the documented `change-me-*` placeholders of
.env.example, and .env (generated passwords) and backups (dumps) are git-ignored.
The running-stack half (image layers, run storage, compute logs) is tests/e2e/test_no_secrets.py."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET_NAME = r"[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)[A-Z0-9_]*"
# NAME=value (dotenv, shell, Dockerfile ENV/ARG) or NAME: value (YAML), at the start of a line.
ASSIGNMENT = re.compile(rf"^\s*(?:export\s+|ENV\s+|ARG\s+|-\s+)?({SECRET_NAME})\s*[=:][ \t]*(.*)$", re.MULTILINE)
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@")
KNOWN_FORMATS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "bcrypt hash": re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"),
}
PY_STRING = re.compile(r"""[rbf]?(["'])(.*?)\1""")
PLACEHOLDER = re.compile(r"^(change-me-[a-z-]+|\$.*|\{.*|<[^>]*>|\.\.\.|…|\*+|)$")


def is_placeholder(value: str) -> bool:
    value = re.sub(r"(^|\s)#.*$", "", value).strip().strip("'\"`")
    return bool(PLACEHOLDER.match(value))


def findings(text: str, python: bool = False) -> list[str]:
    """In Python only string literals count as values (`SECRETS = (...)` names, not a secret)."""
    found = [f"{m.group(1)}={m.group(2).strip()[:12]}…" for m in ASSIGNMENT.finditer(text)
             if not is_placeholder(m.group(2))
             and (not python or PY_STRING.match(m.group(2)) and not is_placeholder(PY_STRING.match(m.group(2)).group(2)))]
    found += [f"URL password {m.group(1)[:6]}…" for m in URL_CREDENTIALS.finditer(text)
              if not is_placeholder(m.group(1))]
    found += [kind for kind, pattern in KNOWN_FORMATS.items() if pattern.search(text)]
    return found


def committable_files() -> list[Path]:
    """Tracked files plus new ones git would pick up (not ignored)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in sorted(set(out.split("\0"))) if name and (REPO / name).is_file()]


@pytest.mark.parametrize("line", [
    "POSTGRES_PASSWORD=hunter2hunter2",
    "export WAREHOUSE_PASSWORD='s3cr3t-value'",
    "      DAGSTER_PG_PASSWORD: reallysecret",
    "ENV API_TOKEN=abcdef123456",
    "url = 'postgresql://dagster:Zx9kQ2mR@postgres:5432/dagster'",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "admin:$2y$10$abcdefghijklmnopqrstuuN7mQ1bq0yL0V4Qe8n6sX3zZ6wV1aB2C3",
])
def test_scanner_flags_real_looking_secrets(line):
    assert findings(line), line


@pytest.mark.parametrize("line", [
    "POSTGRES_PASSWORD=change-me-superuser",
    "GATEWAY_ADMIN_PASSWORD=               # empty: generated",
    "  DAGSTER_PG_PASSWORD: ${DAGSTER_PG_PASSWORD:?DAGSTER_PG_PASSWORD is not set}",
    "ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64)",
    'return f"postgresql://{w.user}:{w.password}@{w.host}"',
    "password: {env: DAGSTER_PG_PASSWORD}",
])
def test_scanner_accepts_placeholders_and_references(line):
    assert not findings(line), line


def test_scanner_reads_python_string_literals_only():
    assert findings('DB_PASSWORD = "hunter2hunter2"', python=True)
    assert not findings('SECRETS = ("POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD")', python=True)
    assert not findings('PASSWORD_VALUE = re.compile(r"PASSWORD=x")', python=True)
    assert not findings('ADMIN_PASSWORD = f"{prefix}-x"', python=True)


def test_no_committable_file_holds_a_secret():
    leaks = {}
    for path in committable_files():
        if path == Path(__file__).resolve():
            continue  # the scanner's own deliberate samples above
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary (screenshots)
        if found := findings(text, python=path.suffix == ".py"):
            leaks[str(path.relative_to(REPO))] = found
    assert not leaks, f"real-looking secrets in files git would commit: {leaks}"


def test_env_example_has_only_the_documented_placeholders():
    values = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    secrets = {k: v for k, v in values.items() if re.fullmatch(SECRET_NAME, k)}
    assert secrets == {"POSTGRES_PASSWORD": "change-me-superuser", "DAGSTER_PG_PASSWORD": "change-me-dagster",
                       "WAREHOUSE_PASSWORD": "change-me-warehouse"}


@pytest.mark.parametrize("path", [".env", "backups/20260101T000000Z/dagster.dump", "backups/x.partial/manifest.json",
                                  "deploy/gateway/certs/tls.key"])
def test_secret_holding_paths_are_git_ignored(path):
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
    assert result.returncode == 0, f"{path} is not git-ignored"


def test_env_is_not_tracked():
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=REPO, capture_output=True)
    assert tracked.returncode != 0, ".env (generated passwords) is tracked by git"
