"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4), so
no websocket client and no npm are needed. Used by test_reports_browser.py to load a report
page at a given viewport width, open every ``<details>``, measure overflow and collect console
errors. A real browser in a real subprocess: the process boundary, nothing mocked.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
)

# Runs in the page: open every <details>, then list what sticks out past the viewport.
_MEASURE = """(() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const width = window.innerWidth;
  const root = document.documentElement;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      wide.push(el.tagName.toLowerCase() + '.' + el.className + ' right=' + Math.round(box.right));
      if (wide.length >= 10) break;
    }
  }
  return JSON.stringify({innerWidth: width, scrollWidth: root.scrollWidth,
                         details: document.querySelectorAll('details').length,
                         overflowing: wide, title: document.title});
})()"""


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    inner_width: int
    scroll_width: int
    details: int
    overflowing: list[str]
    title: str
    console_errors: list[str] = field(default_factory=list)


class _Pipe:
    def __init__(self, binary: str, profile: str) -> None:
        pipe_in, self._to_chrome = os.pipe()
        self._from_chrome, pipe_out = os.pipe()
        # The child must read commands on fd 3 and write on fd 4: move the child's ends above
        # 10 first (so dup2 onto 3 and 4 cannot clobber one another), then dup2 before exec.
        to_chrome_r = fcntl.fcntl(pipe_in, fcntl.F_DUPFD, 10)
        from_chrome_w = fcntl.fcntl(pipe_out, fcntl.F_DUPFD, 10)
        os.close(pipe_in)
        os.close(pipe_out)

        def _fds() -> None:
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        # The browser only draws the page: it does not need (and, slowed down by libfaketime's
        # preload, does not cope with) the shifted clock of .ci/shifted-clock runs.
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}  # fmt: skip
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_fds,  # runs in the child, before exec
            pass_fds=(3, 4, to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> int:  # fmt: skip
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        return self._next

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            message = self._read(deadline)
            if message.get("method") == method:
                return message
            self.events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to_chrome)
            os.close(self._from_chrome)


def check_page(path: Path, *, width: int = 1280, height: int = 900) -> PageCheck:
    """Load ``path`` in headless Chromium at ``width`` x ``height`` CSS pixels; open every
    ``<details>``; report the document's scroll width, the elements that stick out past the
    viewport and every console error, uncaught exception or browser error log entry."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="sc-chromium-") as profile:
        pipe = _Pipe(binary, profile)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                pipe.call(domain, session=session)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            pipe.wait_event("Page.loadEventFired")
            measured = pipe.call(
                "Runtime.evaluate",
                {"expression": _MEASURE, "returnByValue": True},
                session=session,
            )
            if "exceptionDetails" in measured:
                raise RuntimeError(f"measuring failed: {measured['exceptionDetails']}")
            data = json.loads(measured["result"]["value"])
            # let late console messages arrive (a no-op round trip flushes the event queue)
            pipe.call("Runtime.evaluate", {"expression": "1"}, session=session)
            errors = []
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in (
                    "error",
                    "assert",
                ):
                    errors.append(
                        "console: " + " ".join(str(a.get("value")) for a in params["args"])
                    )
                elif method == "Runtime.exceptionThrown":
                    errors.append("exception: " + json.dumps(params["exceptionDetails"]))
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    errors.append("log: " + params["entry"]["text"])
        finally:
            pipe.close()
    return PageCheck(
        inner_width=data["innerWidth"],
        scroll_width=data["scrollWidth"],
        details=data["details"],
        overflowing=data["overflowing"],
        title=data["title"],
        console_errors=errors,
    )
