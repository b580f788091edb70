"""Take docs/client-report.png: the demo's Support Tracking Report in headless Chromium.

Run from the repository root: `.venv/bin/python -m docs.screenshot`. It builds the demo in a
temporary folder, serves it on a free loopback port and photographs one client's report.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from playwright.sync_api import sync_playwright

from ledger.clients import get_client
from psp import db
from psp.config import Settings, Web
from psp.web.links import issue_link
from tests.servers.chromium import LAUNCH_FLAGS, chromium_path
from tests.servers.web import free_port, running_server

OUT = Path(__file__).with_name("client-report.png")
CLIENT = "bluebell-teas"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        psp = Path(sys.executable).with_name("psp")
        subprocess.run([str(psp), "demo", "--dir", folder], check=True, capture_output=True)
        engine = db.make_engine(f"sqlite:///{Path(folder) / 'psp.db'}")
        port = free_port()
        settings = replace(Settings(), web=Web(base_url=f"http://127.0.0.1:{port}"))
        with db.transaction(engine) as session:
            url = issue_link(session, "docs", get_client(session, CLIENT), settings.web).url
        with running_server(settings, engine, port), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=list(LAUNCH_FLAGS))
            page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
            page.goto(url)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
        engine.dispose()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
