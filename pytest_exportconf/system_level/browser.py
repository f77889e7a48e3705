"""The apps' pages in a real headless Chromium, driven through Playwright's Python API.

Chromium is the machine's own (Playwright's browser download is not used): ``--exportconf-chromium``,
else the first of :data:`NAMES` on PATH. Without one, or without the
``playwright`` package, the UI check is "not measured" with the reason, never a pass.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass, field
from typing import Any

# The headless shell first: the same Blink and V8 without the desktop browser around them. It costs half
# the CPU of full Chromium's headless mode for the same pages (measured here: 9 vs 18 CPU s for the
# TypeScript column), which on 2 cores is wall time too.
NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(override: str | None = None) -> tuple[str | None, str]:
    """(executable, how it was found) or (None, why not)."""
    if override:
        found = shutil.which(override)
        return (found, f"--exportconf-chromium {override}") if found else (None, f"--exportconf-chromium "
                                                                              f"{override}: not an executable")
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found, f"{name} on PATH"
    return None, f"no Chromium: none of {', '.join(NAMES)} on PATH and no --exportconf-chromium given"


@dataclass
class Browser:
    override: str | None = None
    _pw: Any = None
    _browser: Any = None
    _context: Any = None  # one context for every page: its HTTP cache keeps the apps' scripts between pages
    _page: Any = None  # one tab for every form check, navigated from page to page (not a page per check)
    unavailable: str | None = None
    executable: str | None = None
    version: str = ""
    _started: bool = field(default=False)

    def _start(self) -> None:
        self._started = True
        exe, how = find_chromium(self.override)
        if exe is None:
            self.unavailable = how
            return
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.unavailable = "the playwright package is not installed (pip install 'exportconf[all]')"
            return
        try:
            self._pw = sync_playwright().start()
            self._browser = self._pw.chromium.launch(executable_path=exe, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
            self._context = self._browser.new_context(viewport={"width": 820, "height": 380})
            self.executable, self.version = exe, self._browser.version
        except Exception as e:
            self.unavailable = f"Chromium at {exe} did not start: {type(e).__name__}: {str(e)[:300]}"
            self.close()

    def check(self, url: str, fill: dict[str, str], read: str, screenshot: bool = True) -> dict[str, Any]:
        """Open ``url``, fill the fields (CSS selector -> value), submit, wait for ``#result`` and read
        its ``data-<read>`` attribute. Returns measured/ok/value/reason and, if asked, the screenshot (a
        data: URL)."""
        if not self._started:
            self._start()
        if self._browser is None:
            return {"measured": False, "reason": self.unavailable}
        if self._page is None or self._page.is_closed():
            self._page = self._context.new_page()
        page = self._page
        try:
            page.goto(url, wait_until="load", timeout=60_000)
            for selector, value in fill.items():
                page.fill(selector, value)
            page.click("#submit")
            page.wait_for_selector("#result[data-done]", timeout=60_000)
            done = page.get_attribute("#result", "data-done")
            value = page.get_attribute("#result", f"data-{read}")
            shown = page.inner_text("#result") or page.inner_text("#error")
            out = {"measured": True, "title": page.title(), "done": done, "value": value, "shown": shown,
                   "browser": f"Chromium {self.version}"}
            if screenshot:
                out["screenshot"] = "data:image/jpeg;base64," + base64.b64encode(
                    page.screenshot(type="jpeg", quality=70)).decode()
            return out
        except Exception as e:
            page.close()  # the next check starts from a fresh tab
            return {"measured": True, "done": "error", "value": None, "reason": f"{type(e).__name__}: {str(e)[:300]}"}

    def run_in_page(self, url: str, rows: list[dict[str, str]], read: str) -> dict[str, Any]:
        """A page that runs the model itself: wait for ``#status[data-ready]``, then fill and submit each
        row in turn and read ``#result``'s ``data-<read>``. Console errors and failed requests are kept
        as evidence."""
        if not self._started:
            self._start()
        if self._browser is None:
            return {"measured": False, "reason": self.unavailable}
        page = self._context.new_page()
        console: list[str] = []
        failed: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text[:300]}") if m.type in ("error", "warning")
                else None)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        out: dict[str, Any] = {"measured": True, "browser": f"Chromium {self.version}", "console": console,
                               "failed_requests": failed}
        try:
            page.goto(url, wait_until="load", timeout=60_000)
            page.wait_for_selector("#status[data-ready=ok], #status[data-ready=error]", timeout=120_000)
            out["runtime"] = page.inner_text("#status")
            load_ms = page.get_attribute("#status", "data-load-ms")
            out["load_ms"] = float(load_ms) if load_ms else None
            if page.get_attribute("#status", "data-ready") != "ok":
                out["reason"] = f"the model did not load in the page: {out['runtime']}"
                return out
            values: list[str | None] = []
            for row in rows:
                page.evaluate("document.getElementById('result').removeAttribute('data-done')")
                for selector, value in row.items():
                    page.fill(selector, value)
                page.click("#submit")
                page.wait_for_selector("#result[data-done]", timeout=60_000)
                values.append(page.get_attribute("#result", f"data-{read}")
                              if page.get_attribute("#result", "data-done") == "ok" else None)
            out["values"] = values
            out["shown"] = page.inner_text("#result")
            out["title"] = page.title()
            shot = base64.b64encode(page.screenshot(type="jpeg", quality=70)).decode()
            out["screenshot"] = f"data:image/jpeg;base64,{shot}"
        except Exception as e:
            out["reason"] = f"{type(e).__name__}: {str(e)[:300]}"
        finally:
            page.close()
        return out

    def close(self) -> None:
        self._context = self._page = None  # closed with the browser
        if self._browser is not None:
            try:
                self._browser.close()
            except Exception:
                pass
            self._browser = None
        if self._pw is not None:
            try:
                self._pw.stop()
            except Exception:
                pass
            self._pw = None
