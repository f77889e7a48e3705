"""How pytest-xdist spreads the cells: by single test, except that the cells of formats that run code on
load, grouped by the producer frameworks they load, go to one worker per group. Each worker that loads
such a format starts sandbox zygotes that import those frameworks (TensorFlow alone is 3-5 s here); one
worker per group pays that once per run. (``xdist_group`` marks would say the same, but xdist 3.8's
``loadgroup`` renames node ids in a way pytest 9.2 no longer honours.)"""

from __future__ import annotations

import re
from typing import Any

from xdist.scheduler import LoadScopeScheduling

CELL_ID = re.compile(r"::test_cell\[(?P<id>[^\]]+)\]$")


class SandboxGroupScheduling(LoadScopeScheduling):
    def __init__(self, config: Any, log: Any, groups: dict[str, str]) -> None:
        super().__init__(config, log)
        self.groups = groups  # cell id prefix "system-format-" -> its producers, e.g. "sklearn,tensorflow,torch"

    def _split_scope(self, nodeid: str) -> str:
        m = CELL_ID.search(nodeid)
        if m:
            for prefix, frameworks in self.groups.items():
                if m["id"].startswith(prefix):
                    return f"exportconf-sandbox:{frameworks}"
        return nodeid
