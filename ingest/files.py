"""Mail from files: single `.eml` messages, Maildir folders and mbox files, for `psp ingest`.

Each message comes with its location (the file source, the folder or mbox path, its key), so a
re-import is recognised place by place, and by content when the same message comes twice.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError

FILE_SOURCE = "file"


@dataclass(frozen=True)
class Location:
    """Where a message was read: an IMAP folder UID, or a file import's folder and key."""

    source: str
    folder: str
    uidvalidity: int
    uid: str


@dataclass(frozen=True)
class RawMessage:
    location: Location
    raw: bytes


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _maildir(path: Path) -> Iterator[RawMessage]:
    """Messages in `new/` and `cur/`; the key is the unique name without its `:2,` flags.

    Read directly rather than through `mailbox.Maildir`, which insists on all three folders,
    and a Maildir copied out of version control has lost its empty `tmp/`.
    """
    folder = str(path.resolve())
    files = [f for sub in ("new", "cur") if (path / sub).is_dir() for f in (path / sub).iterdir()]
    for file in sorted(files, key=lambda f: f.name):
        if file.is_file() and not file.name.startswith("."):
            yield RawMessage(Location(FILE_SOURCE, folder, 0, file.name.split(":", 1)[0]), file.read_bytes())


def _mbox(path: Path) -> Iterator[RawMessage]:
    box = mailbox.mbox(path, factory=None, create=False)
    folder = str(path.resolve())
    for key in box.iterkeys():
        yield RawMessage(Location(FILE_SOURCE, folder, 0, str(key)), box.get_bytes(key))


def _single(path: Path) -> RawMessage:
    return RawMessage(Location(FILE_SOURCE, str(path.parent.resolve()), 0, path.name), path.read_bytes())


def _walk(path: Path) -> Iterator[RawMessage]:
    if path.is_dir():
        if _is_maildir(path):
            yield from _maildir(path)
            return
        for child in sorted(path.iterdir()):
            if not child.name.startswith("."):
                yield from _walk(child)
    elif path.suffix.lower() != ".eml" and _is_mbox(path):  # an .eml is one message, even after a From_ line
        yield from _mbox(path)
    else:
        yield _single(path)


def read_paths(paths: Sequence[Path]) -> Iterator[RawMessage]:
    """Every message under the given paths.

    A folder is a Maildir, or is searched: every file in it (hidden ones aside) is a message or
    an mbox, so nothing handed to us is skipped silently — a file that is not mail ends in
    quarantine with the reason.
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"no such file or folder: {', '.join(missing)}")
    for path in paths:
        try:
            yield from _walk(path)
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
