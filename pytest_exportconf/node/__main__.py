"""``python -m pytest_exportconf.node CACHE_DIR [--node PATH]``: provision the Node environment ahead of
a run (e.g. in a CI setup step) and print what was found, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .discovery import NodeUnavailable
from .environment import provision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_exportconf.node", description=__doc__)
    parser.add_argument("cache_dir", help="the plugin's cache directory (the Node environment goes to CACHE_DIR/node)")
    parser.add_argument("--node", default=None, help="a node executable or directory (as --exportconf-node)")
    args = parser.parse_args(argv)
    try:
        env = provision(Path(args.cache_dir) / "node", args.node)
    except NodeUnavailable as e:
        print(e, file=sys.stderr)
        return 1
    print(json.dumps({"node": str(env.found.path), "version": env.found.version, "source": env.found.source,
                      "root": str(env.root), "reused": env.reused, "npm_ci_s": env.npm_ci_s,
                      "js": None if env.ts_error else env.js_argv(),
                      "ts": None if env.ts_error else env.ts_argv()}, indent=1))
    return 0 if env.ts_error is None else 2


if __name__ == "__main__":
    sys.exit(main())
