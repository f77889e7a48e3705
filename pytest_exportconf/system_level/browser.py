"""The apps' pages in a real headless Chromium, driven through Playwright's Python API.

Chromium is the machine's own (Playwright's browser download is not used): ``--exportconf-chromium``,
else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on PATH. Without one, or without the
``playwright`` package, the UI check is "not measured" with the reason, never a pass.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass, field
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


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
            self.executable, self.version = exe, self._browser.version
        except Exception as e:
            self.unavailable = f"Chromium at {exe} did not start: {type(e).__name__}: {str(e)[:300]}"
            self.close()

    def check(self, url: str, fill: dict[str, str], read: str) -> dict[str, Any]:
        """Open ``url``, fill the fields (CSS selector -> value), submit, wait for ``#result`` and read
        its ``data-<read>`` attribute. Returns measured/ok/value/reason/screenshot (a data: URL)."""
        if not self._started:
            self._start()
        if self._browser is None:
            return {"measured": False, "reason": self.unavailable}
        page = self._browser.new_page(viewport={"width": 820, "height": 380})
        try:
            page.goto(url, wait_until="load", timeout=60_000)
            for selector, value in fill.items():
                page.fill(selector, value)
            page.click("#submit")
            page.wait_for_selector("#result[data-done]", timeout=60_000)
            done = page.get_attribute("#result", "data-done")
            value = page.get_attribute("#result", f"data-{read}")
            shown = page.inner_text("#result") or page.inner_text("#error")
            shot = base64.b64encode(page.screenshot(type="jpeg", quality=70)).decode()
            return {"measured": True, "title": page.title(), "done": done, "value": value, "shown": shown,
                    "screenshot": f"data:image/jpeg;base64,{shot}", "browser": f"Chromium {self.version}"}
        except Exception as e:
            return {"measured": True, "done": "error", "value": None, "reason": f"{type(e).__name__}: {str(e)[:300]}"}
        finally:
            page.close()

    def close(self) -> None:
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
