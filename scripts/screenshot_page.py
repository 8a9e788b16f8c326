"""Screenshot the web page with the example photo classified (docs/images/page.png).

Starts ``genderclass serve`` on the bundled models on a free loopback port, opens the page in
headless Chromium (the system's /usr/bin/chromium, driven by Playwright; no browser download),
uploads ``examples/astronaut.jpg`` and saves the page once its result is shown::

    python scripts/screenshot_page.py [--out docs/images/page.png]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        try:
            with urlopen(url + "/healthz", timeout=2):
                return
        except (URLError, OSError):
            time.sleep(0.3)
    sys.exit(f"the server did not answer within {seconds:.0f} s")


def screenshot(url: str, image: Path, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url + "/")
        page.set_input_files("#file-input", str(image))
        expect(page.locator(".card .face-row")).to_have_count(1, timeout=30_000)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "astronaut.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "page.png")
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "genderclass", "-q", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, server)
        screenshot(url, args.image, args.out)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()
