"""The location commands behind the Makefile: `python -m platform_core.cli COMMAND`.

  compose            write compose.locations.yaml from the registry (make prepare / up)
  names              the registered locations, one per line
  workspace          the workspace.yaml the webserver and daemon load (what compose mounts)
  helm [--registry R] [--tag T]
                     write deploy/helm/values.locations.yaml and volumes.locations.yaml for
                     Dagster's Helm chart (make helm-values; tag default: <dagster>-<git rev>)
  images --registry R [--tag T]
                     the `local-image registry-image` pairs make images tags, one per line
  new NAME           scaffold code_locations/NAME and register it (make location)
  remove NAME [--force]
                     unregister and delete it, unless another location depends on it
                     (make location-remove; needs the venv, it loads the definitions)"""

from __future__ import annotations

import sys

from platform_core import location_scaffold, locations, locations_compose, locations_helm


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    root = locations.repo_root()
    try:
        if command == "compose":
            print(f"wrote {locations_compose.write(root).relative_to(root)}")
        elif command == "names":
            print("\n".join(locations.names(root)))
        elif command in ("helm", "images") and _options(args) is not None:
            options = _options(args)
            if command == "helm":
                for path in locations_helm.write(root, options.get("--registry"), options.get("--tag")):
                    print(f"wrote {path.relative_to(root)}")
            elif "--registry" not in options:
                print("usage: images --registry REGISTRY [--tag TAG]", file=sys.stderr)
                return 2
            else:
                tag = options.get("--tag") or locations_helm.default_tag(root)
                for source, target in locations_helm.image_plan(root, options["--registry"], tag):
                    print(source, target)
        elif command == "workspace":
            print(locations_compose.workspace_yaml(locations.load(root)), end="")
        elif command == "new" and len(args) == 1:
            folder = location_scaffold.new(args[0], root)
            print(f"created {folder.relative_to(root)} and registered it in {locations.REGISTRY_FILE}")
        elif command == "remove" and len(args) in (1, 2) and args[1:] in ([], ["--force"]):
            from platform_core.location_dependants import dependants

            folder = location_scaffold.remove(args[0], root, dependants(args[0], root), force=args[1:] == ["--force"])
            print(f"removed {folder.relative_to(root)} and its entry in {locations.REGISTRY_FILE}")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (locations.LocationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _options(args: list[str]) -> dict[str, str] | None:
    """--registry R / --tag T pairs (an empty value counts as not given, as make passes them)."""
    if len(args) % 2 or any(flag not in ("--registry", "--tag") for flag in args[::2]):
        return None
    return {flag: value for flag, value in zip(args[::2], args[1::2]) if value}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
