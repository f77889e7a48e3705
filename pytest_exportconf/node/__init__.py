"""Node.js for the JavaScript and TypeScript stacks: discovery (:mod:`.discovery`), the harness
environment (:mod:`.environment`: nodeenv, ``npm ci``, tsc) and the packages' type check
(:mod:`.typecheck`). ``python -m pytest_exportconf.node CACHE_DIR`` provisions ahead of a run.

Dependencies point one way: discovery <- environment -> typecheck; nothing here imports the stacks.
"""

from __future__ import annotations

from .discovery import MIN_NODE_MAJOR, FoundNode, NodeUnavailable, discover_node, health_check, wheel_node
from .environment import NodeEnv, NodeRuntimes, lock_digest, provision, source_digest

__all__ = ["MIN_NODE_MAJOR", "FoundNode", "NodeEnv", "NodeRuntimes", "NodeUnavailable", "discover_node",
           "health_check", "lock_digest", "provision", "source_digest", "wheel_node"]
