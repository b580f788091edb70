"""`psp staff add`, `psp portal link|list|revoke`, `psp serve` and the demo's web access, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.servers.web import free_port
from tests.test_cli_installed import PSP, error_line, ok, psp

PASSWORD = "correct horse battery"


def _wait_until_serving(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, follow_redirects=False)
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_staff_and_links_from_the_command_line(tmp_path: Path) -> None:
    ok(tmp_path, "init")
    ok(tmp_path, "client", "add", "Acme Shop")
    assert "created" in ok(tmp_path, "staff", "add", "Anna@Example.test", env={"PSP_STAFF_PASSWORD": PASSWORD})
    again = psp(tmp_path, "staff", "add", "anna@example.test", env={"PSP_STAFF_PASSWORD": PASSWORD})
    assert "already exists" in error_line(again)
    short = psp(tmp_path, "staff", "add", "ben@example.test", env={"PSP_STAFF_PASSWORD": "short"})
    assert "at least 10 characters" in error_line(short)
    (tmp_path / "psp.toml").write_text('[web]\nbase_url = "https://support.example.test/"\n')
    url = ok(tmp_path, "portal", "link", "acme-shop").strip()
    assert re.fullmatch(r"https://support\.example\.test/r/[A-Za-z0-9_-]{43}", url)
    assert "unknown client" in error_line(psp(tmp_path, "portal", "link", "nobody"))
    [row] = json.loads(ok(tmp_path, "portal", "list", "--json"))
    assert (row["client"], row["revoked_at"]) == ("acme-shop", None)
    assert ok(tmp_path, "portal", "revoke", str(row["id"])).strip() == f"link {row['id']} revoked"
    assert "revoked" in ok(tmp_path, "portal", "list")


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_binds_loopback_and_answers(tmp_path: Path, workers: int) -> None:
    ok(tmp_path, "init")
    ok(tmp_path, "client", "add", "Acme Shop")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")}
    url = ok(tmp_path, "portal", "link", "acme-shop").strip().replace(":8000", f":{port}")
    process = subprocess.Popen(
        [str(PSP), "serve", "--port", str(port), "--workers", str(workers)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        report = _wait_until_serving(url, process)
        assert report.status_code == 200
        assert "Acme Shop" in report.text
        with httpx.Client() as client:  # keep-alive: every worker answers on a reused connection
            for _ in range(6):
                assert client.get(f"http://127.0.0.1:{port}/staff/review").status_code == 303
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    with pytest.raises(httpx.TransportError):
        httpx.get(url)  # the workers are gone with it


@pytest.mark.parametrize("serve", [False, True])
def test_demo_ends_with_a_staff_login_and_a_client_link(tmp_path: Path, serve: bool) -> None:
    if not serve:
        out = ok(tmp_path, "demo")
        assert re.search(r"Staff login: +http://127\.0\.0\.1:8000/staff +anna@harbourcart\.example / \S{12,}", out)
        assert re.search(r"Acme Shop's report: http://127\.0\.0\.1:8000/r/\S{43}\n?$", out)
        return
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")}
    process = subprocess.Popen(
        [str(PSP), "demo", "--serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Acme Shop's report:" in line:
                break
        out = "".join(lines)
        password = re.search(r"anna@harbourcart\.example / (\S+)", out)
        link = re.search(r"Acme Shop's report: (\S+)", out)
        assert password is not None
        assert link is not None
        report = _wait_until_serving(link.group(1), process)
        assert report.status_code == 200
        assert "Acme Shop" in report.text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get("/staff/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            login = browser.post(
                "/staff/login",
                data={"email": "anna@harbourcart.example", "password": password.group(1), "csrf": csrf.group(1)},
            )
            assert login.status_code == 303
            assert "Question about shipping zones" in browser.get("/staff/review").text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
