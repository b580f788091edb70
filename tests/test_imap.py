"""The IMAP poller against a real Dovecot, on SQLite and PostgreSQL.

Each test gets its own Dovecot user (so its own mailboxes) on one server started for the session.
Messages are put there with IMAP APPEND, as a mail server's delivery would leave them.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from ingest.imap import ImapError, connect, mailbox_health, poll_account
from ingest.models import MailLocation, MailMessage, QuarantinedMessage
from ingest.summary import IntakeSummary
from ledger.models import SourceItem
from psp.config import ImapAccount, Mail, Settings, Staff
from tests.servers.dovecot import DovecotServer, find_free_port_base

HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "hostile"
LABELLED = Path(__file__).parent / "data" / "labelled"
PASSWORD = "imap-test-password"
PSP = Path(sys.executable).with_name("psp")
_users = itertools.count(1)


USERS = 64  # one per test; created before the server starts, as a reload can drop a login


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    server = DovecotServer(tmp_path_factory.mktemp("dovecot"), port_base=find_free_port_base())
    for n in range(1, USERS + 1):
        server.add_user(f"user{n}@example.com", PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> ImapAccount:
    """A fresh Dovecot user with INBOX and Sent, reached over implicit TLS."""
    user = f"user{next(_users)}@example.com"
    monkeypatch.setenv("PSP_TEST_IMAP_PASSWORD", PASSWORD)
    account = ImapAccount(
        name="support",
        host=dovecot.host,
        port=dovecot.ssl_port,
        user=user,
        password_env="PSP_TEST_IMAP_PASSWORD",
        security="ssl",
        folders=("INBOX", "Sent"),
        cafile=dovecot.cafile,
    )
    with mailbox(account) as client:
        client.create_folder("Sent")
    return account


def settings_for(account: ImapAccount, batch_size: int = 200) -> Settings:
    return Settings(staff=Staff(domains=("harbourcart.example",)), mail=Mail(batch_size=batch_size), imap=(account,))


def mailbox(account: ImapAccount) -> IMAPClient:
    return connect(account)


def mail(n: int, sender: str = "jane@acme-shop.example", subject: str | None = None) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@harbourcart.example\r\nSubject: {subject or f'Request {n}'}\r\n"
        f"Date: Mon, 2 Mar 2026 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <m{n}.{sender}>\r\n\r\n"
        f"Please help with request {n}.\r\n"
    ).encode()


def append(account: ImapAccount, folder: str, messages: list[bytes]) -> None:
    with mailbox(account) as client:
        for offset in range(0, len(messages), 500):
            client.multiappend(folder, messages[offset : offset + 500])


def counts(engine: Engine) -> tuple[int, int, int, int]:
    """Stored messages, items, locations, quarantined."""
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one()
            for model in (MailMessage, SourceItem, MailLocation, QuarantinedMessage)
        )


def poll(engine: Engine, settings: Settings) -> IntakeSummary:
    summary, errors = poll_account(engine, settings, settings.imap[0])
    assert errors == []
    return summary


def test_new_mail_then_a_repoll_finds_nothing_new(engine: Engine, account: ImapAccount) -> None:
    append(account, "INBOX", [mail(n) for n in range(30)])
    staff_reply = mail(99, sender="anna@harbourcart.example", subject="Re: Request 1")
    append(account, "Sent", [staff_reply])
    settings = settings_for(account, batch_size=7)
    assert poll(engine, settings) == IntakeSummary(read=31, stored=31)
    assert poll(engine, settings) == IntakeSummary()
    append(account, "INBOX", [mail(30)])
    assert poll(engine, settings) == IntakeSummary(read=1, stored=1)
    assert counts(engine) == (32, 32, 32, 0)
    with Session(engine) as session:
        directions = dict(
            session.exec(select(MailMessage.direction, func.count()).group_by(MailMessage.direction)).all()
        )
        health = {(h.folder, h.last_uid, h.stored) for h in mailbox_health(session)}
    assert directions == {"in": 31, "out": 1}
    assert health == {("INBOX", 31, 31), ("Sent", 1, 1)}


def test_polling_never_marks_mail_read(engine: Engine, account: ImapAccount) -> None:
    append(account, "INBOX", [mail(n) for n in range(3)])
    poll(engine, settings_for(account))
    with mailbox(account) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert all(b"\\Seen" not in f for f in flags.values())


def test_uidvalidity_change_rereads_without_doubling(
    engine: Engine, account: ImapAccount, dovecot: DovecotServer
) -> None:
    append(account, "INBOX", [mail(n) for n in range(10)])
    settings = settings_for(account)
    poll(engine, settings)
    dovecot.change_uidvalidity("INBOX", user=account.user)
    append(account, "INBOX", [mail(10)])
    assert poll(engine, settings) == IntakeSummary(read=11, stored=1, duplicate=10)
    assert counts(engine)[:2] == (11, 11)
    assert counts(engine)[2] == 21  # each message seen under both UIDVALIDITY values


@pytest.mark.parametrize("security", ["starttls", "none"])
def test_starttls_and_explicit_plaintext(
    engine: Engine, account: ImapAccount, dovecot: DovecotServer, security: str
) -> None:
    append(account, "INBOX", [mail(1)])
    plain = replace(account, port=dovecot.port, security=security)
    assert poll(engine, settings_for(plain)) == IntakeSummary(read=1, stored=1)


def test_an_untrusted_certificate_is_refused_and_recorded(engine: Engine, account: ImapAccount) -> None:
    untrusted = replace(account, cafile="")
    summary, errors = poll_account(engine, settings_for(untrusted), untrusted)
    assert summary == IntakeSummary()
    assert len(errors) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in errors[0]
    with Session(engine) as session:
        health = mailbox_health(session)
    assert [h.folder for h in health] == list(account.folders)
    assert all("CERTIFICATE_VERIFY_FAILED" in (h.last_error or "") for h in health)


def test_a_wrong_password_is_a_clear_error(account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSP_TEST_IMAP_PASSWORD", "wrong")
    with pytest.raises(ImapError, match="IMAP account 'support'"):
        connect(account)
    monkeypatch.delenv("PSP_TEST_IMAP_PASSWORD")
    with pytest.raises(ImapError, match=r"set the password in \$PSP_TEST_IMAP_PASSWORD"):
        connect(account)


def test_a_connection_dropped_mid_poll_resumes_exactly_once(
    engine: Engine, account: ImapAccount, dovecot: DovecotServer
) -> None:
    append(account, "INBOX", [mail(n) for n in range(100)])
    settings = settings_for(account, batch_size=10)
    batches = 0

    def drop_after_three(account_name: str, folder: str, summary: IntakeSummary) -> None:
        nonlocal batches
        batches += 1
        if batches == 3:
            dovecot.kick(account.user)

    summary, errors = poll_account(engine, settings, account, drop_after_three)
    assert summary.stored == 30
    assert len(errors) == 1
    assert poll(engine, settings).stored == 70
    assert counts(engine) == (100, 100, 100, 0)


@pytest.mark.skipif(not HOSTILE.is_dir(), reason=f"hostile corpus not found at {HOSTILE}")
def test_the_hostile_corpus_through_imap_is_stored_or_quarantined(engine: Engine, account: ImapAccount) -> None:
    with (HOSTILE / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        files = [HOSTILE / row["file"] for row in csv.DictReader(handle, delimiter="\t")]
    append(account, "INBOX", [f.read_bytes() for f in files])
    summary = poll(engine, settings_for(account))
    assert summary.read == len(files)
    assert summary.stored + summary.ignored + summary.duplicate + summary.quarantined == len(files)
    assert summary.quarantined >= 2
    _, _, locations, quarantined = counts(engine)
    assert locations + quarantined == len(files)


def test_two_pollers_at_once_store_each_message_once(engine: Engine, account: ImapAccount) -> None:
    append(account, "INBOX", [mail(n) for n in range(300)])
    settings = settings_for(account, batch_size=25)
    results: list[IntakeSummary] = []

    def run() -> None:
        results.append(poll_account(engine, settings, account)[0])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.stored for r in results) == 300
    assert counts(engine) == (300, 300, 300, 0)


def _psp_poll(db_url: str, workdir: Path, account: ImapAccount) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PSP), "--db", db_url, "--config", str(workdir / "psp.toml"), "poll", "--once", "--json"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PSP_TEST_IMAP_PASSWORD": PASSWORD},
    )


def test_a_poller_killed_at_random_points_loses_and_doubles_nothing(
    db_url: str, engine: Engine, account: ImapAccount, tmp_path: Path
) -> None:
    """5,000 messages; the poller is SIGKILLed several times mid-poll, then runs to the end."""
    total = 5000
    append(account, "INBOX", [mail(n) for n in range(total)])
    (tmp_path / "psp.toml").write_text(
        f'[mail]\nbatch_size = 100\n[[imap]]\nname = "support"\nhost = "{account.host}"\nport = {account.port}\n'
        f'user = "{account.user}"\npassword_env = "PSP_TEST_IMAP_PASSWORD"\nsecurity = "ssl"\n'
        f'folders = ["INBOX"]\ncafile = "{account.cafile}"\n'
    )
    chance = random.Random(20261126)
    kills = 0
    for _ in range(5):
        process = _psp_poll(db_url, tmp_path, account)
        time.sleep(chance.uniform(0.8, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    final = _psp_poll(db_url, tmp_path, account)
    _, stderr = final.communicate(timeout=600)
    assert final.returncode == 0, stderr.decode()
    assert kills >= 1
    assert counts(engine) == (total, total, total, 0)


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_watch_wakes_on_new_mail_and_survives_a_server_restart(
    db_url: str, engine: Engine, account: ImapAccount, dovecot: DovecotServer, tmp_path: Path
) -> None:
    (tmp_path / "psp.toml").write_text(
        f'[mail]\nidle_seconds = 30\n[[imap]]\nname = "support"\nhost = "{account.host}"\nport = {account.port}\n'
        f'user = "{account.user}"\npassword_env = "PSP_TEST_IMAP_PASSWORD"\nsecurity = "ssl"\n'
        f'folders = ["INBOX"]\ncafile = "{account.cafile}"\n'
    )
    watcher = subprocess.Popen(
        [str(PSP), "--db", db_url, "--config", str(tmp_path / "psp.toml"), "poll", "--watch"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PSP_TEST_IMAP_PASSWORD": PASSWORD},
    )
    try:
        append(account, "INBOX", [mail(1)])
        _wait_for(lambda: counts(engine)[0] == 1)
        dovecot.restart()
        append(account, "INBOX", [mail(2)])
        _wait_for(lambda: counts(engine)[0] == 2, timeout=60)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, stderr = watcher.communicate(timeout=60)
    log = stderr.decode()
    assert "support/INBOX: 1 read, 1 stored" in log
    assert "reconnecting in 1 s" in log
    assert watcher.returncode == 0
