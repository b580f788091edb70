"""Headless Chromium for tests that look at pages the way a person would.

Uses Debian's `chromium` package (scripts/services/install.sh installs it):
nothing downloads a browser build at run time, which would fail without
network access. Plain module without pytest imports, so bench/ can use it too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")

LAUNCH_FLAGS: tuple[str, ...] = (
    "--headless",
    # Tests and CI run as root, where Chromium's sandbox refuses to start.
    "--no-sandbox",
    "--disable-gpu",
    # No traffic of its own: the machine only reaches package registries,
    # and a test must only talk to its own local server.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Flags for every launch; add e.g. --screenshot=FILE or --dump-dom, then the URL."""


class ChromiumNotInstalledError(RuntimeError):
    """Chromium is missing; scripts/services/install.sh installs it."""


def chromium_path() -> str:
    """Path of the Chromium binary: /usr/bin/chromium, else `chromium` on PATH."""
    if DEBIAN_CHROMIUM.is_file():
        return str(DEBIAN_CHROMIUM)
    found = shutil.which("chromium")
    if found is None:
        raise ChromiumNotInstalledError(
            "chromium not found (neither /usr/bin/chromium nor on PATH); "
            "run scripts/services/install.sh as root to install Debian's chromium package"
        )
    return found


def chromium_command(*arguments: str) -> list[str]:
    """Full command line: binary, LAUNCH_FLAGS, then your arguments (flags and URL)."""
    return [chromium_path(), *LAUNCH_FLAGS, *arguments]
