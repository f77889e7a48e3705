"""The answering side of the JSON-lines protocol (docs/protocol.md), for every Python process that
speaks it on stdin/stdout: the load worker, a sandbox zygote and the bridge supervisor."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TextIO

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def open_channel() -> TextIO:
    """Keep a private handle on the real stdout for the protocol, then point fd 1 at stderr, so that
    whatever TensorFlow, torch or a user's code prints cannot corrupt the channel."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def serve(handlers: Mapping[str, Handler], channel: TextIO) -> None:
    """Answer each request line with its op's handler until ``shutdown`` or the end of input. A handler
    that raises answers ``ok: false`` with the error: a failing request is a result, not the process's end."""
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op", "")
        if op == "shutdown":
            break
        if op not in handlers:
            resp = {"ok": False, "error": f"unknown op {op!r}; known: {', '.join(handlers)}, shutdown"}
        else:
            try:
                resp = handlers[op](req)
            except BaseException as e:
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        resp["id"] = req.get("id")
        channel.write(json.dumps(resp) + "\n")
        channel.flush()
