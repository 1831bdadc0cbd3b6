#!/usr/bin/env python3
"""Entrypoint of the instance image: write $DAGSTER_HOME/dagster.yaml from the mounted template,
then exec the command.

Dagster resolves `{env: NAME}` only where a field accepts it; run-queue tag limits do not.
Those few values are written as ${NAME} in the template and substituted here. Secrets stay
`{env: ...}` so they never reach the rendered file or the instance ref passed to run containers."""

import os
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
TEMPLATE = Path(os.environ.get("DAGSTER_YAML_TEMPLATE", "/opt/dagster/dagster.yaml.template"))


def render(text: str, env: dict[str, str]) -> str:
    missing = sorted({name for name in PLACEHOLDER.findall(text) if not env.get(name)})
    if missing:
        raise SystemExit(
            f"dagster.yaml needs environment variable(s) {', '.join(missing)}; "
            "set them in .env (see .env.example)"
        )
    return PLACEHOLDER.sub(lambda m: env[m.group(1)], text)


def main() -> None:
    if TEMPLATE.is_file():
        target = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
        target.write_text(render(TEMPLATE.read_text(), dict(os.environ)))
    if len(sys.argv) > 1:
        os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
