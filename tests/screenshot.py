"""Screenshot an HTML page with headless Chromium: `python tests/screenshot.py PAGE OUT.png`.

    python tests/screenshot.py PAGE.html OUT.png [--width 1280] [--height H]

Not part of `make test`; needs a `chromium` binary (Debian: `apt-get install -y chromium`;
`fonts-lato` and `fonts-noto-color-emoji` make it look like Slack, with emoji in colour).

The height: Chromium's `--screenshot` captures the window only, so the page is measured
first. A headless Chromium is started with `--remote-debugging-pipe` (DevTools on file
descriptors 3 and 4, no port, no extra packages), loads the page in a 100 px tall window of
the same width and reports `document.documentElement.scrollHeight` once fonts are ready.
The picture is then taken with the plain command line,

    chromium --headless=new --disable-gpu --no-sandbox --hide-scrollbars
             --window-size=W,H --screenshot=OUT file://PAGE

If measuring fails (an old Chromium, a timeout), the height is a generous guess from the
page's size (`estimate_height`); `--height` skips measuring altogether.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

FLAGS = ["--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars"]
MAX_HEIGHT = 16_000  # Chromium's own cap on a window is about this


def chromium() -> str:
    for candidate in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit("no chromium on PATH: apt-get install -y chromium")


def screenshot(page: Path, out: Path, width: int = 1280, height: int | None = None) -> int:
    """Write a PNG of `page` at `width`, as tall as the page; returns the height used."""
    url = page.resolve().as_uri()
    if height is None:
        try:
            height = measure_height(url, width)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            height = estimate_height(page)
            print(f"measuring failed ({exc}); guessing {height} px", file=sys.stderr)
    height = max(100, min(height, MAX_HEIGHT))
    command = [
        chromium(),
        *FLAGS,
        f"--window-size={width},{height}",
        f"--screenshot={out.resolve()}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    if not out.exists():
        raise SystemExit(f"chromium wrote no {out}")
    return height


def measure_height(url: str, width: int, timeout: float = 30) -> int:
    """The page's height at `width`, asked of a headless Chromium over a DevTools pipe."""
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def wire() -> None:  # in the child: DevTools reads fd 3 and writes fd 4
        read_end = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        write_end = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    command = [chromium(), *FLAGS, "--remote-debugging-pipe", f"--window-size={width},100"]
    proc = subprocess.Popen(
        [*command, "about:blank"],
        pass_fds=(3, 4),
        preexec_fn=wire,  # a single-threaded script: preexec_fn is safe
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    devtools = _DevTools(to_chrome_w, from_chrome_r, time.monotonic() + timeout)
    try:
        target = devtools.call("Target.createTarget", url="about:blank")["targetId"]
        attached = devtools.call("Target.attachToTarget", targetId=target, flatten=True)
        session = attached["sessionId"]
        devtools.call("Page.enable", session)
        devtools.call("Page.navigate", session, url=url)
        devtools.wait_for("Page.loadEventFired", session)
        answer = devtools.call(
            "Runtime.evaluate",
            session,
            expression="document.fonts.ready.then(() => document.documentElement.scrollHeight)",
            awaitPromise=True,
            returnByValue=True,
        )
        height = int(answer["result"]["value"])
        devtools.call("Browser.close")
    finally:
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return height


class _DevTools:
    """Chrome DevTools Protocol over a pipe: NUL-terminated JSON messages."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self.next_id += 1
        message: dict = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise ValueError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict:
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            self.events.append(self._read())

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise OSError("chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw)


def estimate_height(page: Path) -> int:
    """A generous guess when the page cannot be measured: 1 px per 12 bytes of HTML."""
    return max(1200, page.stat().st_size // 12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", help="the HTML file (e.g. `migrate-bot demo --html`'s)")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, help="skip measuring: the window's height")
    args = parser.parse_args(argv)
    page, out = Path(args.page), Path(args.out)
    started = time.monotonic()
    height = screenshot(page, out, args.width, args.height)
    took = time.monotonic() - started
    print(f"{out}: {args.width}x{height}, {out.stat().st_size} bytes, {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
