"""The location commands behind the Makefile: `python -m platform_core.cli COMMAND`.

  compose            write compose.locations.yaml from the registry (make prepare / up)
  names              the registered locations, one per line
  workspace          the workspace.yaml the webserver and daemon load (what compose mounts)
  new NAME           scaffold code_locations/NAME and register it (make location)
  remove NAME [--force]
                     unregister and delete it, unless another location depends on it
                     (make location-remove; needs the venv, it loads the definitions)"""

from __future__ import annotations

import sys

from platform_core import location_scaffold, locations, locations_compose


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
