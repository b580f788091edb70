"""A private, real Request Tracker 5 for tests: SQLite database and standalone server on loopback.

The helpdesk sync talks REST 2.0 to a real RT, so its tests run against one: TicketSQL date
parsing, paging, loose JSON types and permissions all behave as in production. Install the
packages with ``scripts/services/request_tracker.sh`` (run by ``scripts/services/install.sh``).

Each :class:`RequestTrackerServer` owns one state directory and writes everything there: the
site configuration (selected with the environment variables ``RT_SITE_CONFIG`` and
``RT_SITE_CONFIG_DIR``, so nothing in /etc is read beyond RT's own defaults), the SQLite
database, Mason's caches, the log and a fake sendmail that appends RT's outgoing mail to
``var/outbox.mbox``. ``$BcryptCost`` is 4: at RT's default every authenticated request would
spend about a quarter of a second hashing the credential.

The database is set up once per state directory: root (password :data:`ROOT_PASSWORD`), an auth
token for root (kept in ``token``), a privileged staff user (:data:`STAFF_USER`, who may do
anything) and the rights RT's mail gateway needs so that client mail can open and answer tickets.
``start()`` is idempotent: a server already answering from this state directory is reused.

Helpers make tickets through REST 2.0 as root or as the staff user, and client mail through the
mail gateway (the way a client's reply reaches a real RT).

A plain module without pytest imports, so benchmarks can use it too.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
RT_SERVER = "/usr/share/request-tracker5/libexec/rt-server"
SETUP_DATABASE = "/usr/sbin/rt-setup-database-5"
RT_LIB = "/usr/share/request-tracker5/lib"
ROOT_PASSWORD = "psp-rt-root"
STAFF_USER = "anna"
STAFF_ADDRESS = "anna@example.com"
STAFF_PASSWORD = "psp-rt-staff"
INSTALL_HINT = "run scripts/services/request_tracker.sh as root (installs request-tracker5)"

# Run once against a fresh database: the rights the mail gateway needs (RT refuses client mail
# without them), the staff user, and root's token, printed on the last line.
_BOOTSTRAP = r"""
use strict;
use warnings;
use lib '__RT_LIB__';
use RT;
RT::LoadConfig();
RT::Init();
my $everyone = RT::Group->new(RT->SystemUser);
$everyone->LoadSystemInternalGroup('Everyone');
for my $right (qw(CreateTicket ReplyToTicket CommentOnTicket)) {
    my ($ok, $msg) = $everyone->PrincipalObj->GrantRight(Right => $right, Object => RT->System);
    die "grant $right: $msg\n" unless $ok;
}
my $staff = RT::User->new(RT->SystemUser);
my ($id, $msg) = $staff->Create(
    Name => '__STAFF_USER__', EmailAddress => '__STAFF_ADDRESS__', RealName => 'Anna Staff', Privileged => 1,
);
die "staff user: $msg\n" unless $id;
($id, $msg) = $staff->SetPassword('__STAFF_PASSWORD__');
die "staff password: $msg\n" unless $id;
($id, $msg) = $staff->PrincipalObj->GrantRight(Right => 'SuperUser', Object => RT->System);
die "staff rights: $msg\n" unless $id;
my $root = RT::User->new(RT->SystemUser);
$root->Load('root');
my $token = RT::AuthToken->new(RT::CurrentUser->new($root));
my ($token_id, $token_msg, $authstring) = $token->Create(Owner => $root->Id, Description => 'psp tests');
die "token: $token_msg\n" unless $token_id;
print "$authstring\n";
"""


class RequestTrackerError(RuntimeError):
    """RT could not be set up, started, stopped, or refused a test's request."""


def find_free_port(start: int = 28580, attempts: int = 200) -> int:
    """A port nobody listens on now (there is a small race until RT binds it)."""
    for port in range(start, start + attempts):
        if not _port_accepts(port):
            return port
    raise RequestTrackerError(f"no free port in {start}..{start + attempts}")


def _port_accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


class RequestTrackerServer:
    """One private RT instance: its files under `state_dir`, its server on 127.0.0.1:`port`."""

    def __init__(self, state_dir: str | os.PathLike[str], port: int, *, workers: int = 1) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.port = port
        self.workers = workers
        self.timings: dict[str, float] = {}

    # -- connection details ------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def token(self) -> str:
        """Root's auth token (`Authorization: token …`)."""
        return (self.state_dir / "token").read_text(encoding="utf-8").strip()

    @property
    def log_path(self) -> Path:
        return self.state_dir / "var" / "rt.log"

    @property
    def outbox(self) -> Path:
        """Every mail RT sent (autoreplies, notifications), appended as mbox."""
        return self.state_dir / "var" / "outbox.mbox"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "RT_SITE_CONFIG": str(self.state_dir / "etc" / "RT_SiteConfig.pm"),
            "RT_SITE_CONFIG_DIR": str(self.state_dir / "etc" / "RT_SiteConfig.d"),
        }

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Set the database up if there is none, start the server, wait until REST answers.

        Idempotent: a server that already answers from this state directory is reused.
        """
        if not Path(RT_SERVER).exists():
            raise RequestTrackerError(f"Request Tracker is not installed; {INSTALL_HINT}")
        with self._locked():
            self._write_files()
            if not (self.state_dir / "token").exists():
                began = time.monotonic()
                self._setup_database()
                self.timings["database"] = time.monotonic() - began
            if self._running_pid() is not None and self._answers():
                return
            began = time.monotonic()
            self._launch()
            self._wait_until_ready(timeout)
            self.timings["server"] = time.monotonic() - began

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and every worker (TERM to its process group); RT then refuses connections."""
        with self._locked():
            pid = self._running_pid()
            if pid is None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._running_pid() is None and not _port_accepts(self.port):
                    (self.state_dir / "rt-server.pid").unlink(missing_ok=True)
                    return
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            raise RequestTrackerError(f"RT (pid {pid}) did not stop within {timeout} s; killed")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write_files(self) -> None:
        for sub in ("etc/RT_SiteConfig.d", "var/mason", "var/session", "bin"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        var = self.state_dir / "var"
        sendmail = self.state_dir / "bin" / "fake-sendmail"
        sendmail.write_text(f'#!/bin/sh\n{{ echo "From rt $(date)"; cat; echo; }} >> "{var}/outbox.mbox"\n')
        sendmail.chmod(0o755)
        settings = {
            "rtname": "rt.test",
            "Organization": "rt.test",
            "WebDomain": HOST,
            "WebPort": self.port,
            "WebBaseURL": self.url,
            "WebPath": "",
            "DatabaseType": "SQLite",
            "DatabaseName": str(var / "rt.sqlite"),
            "MasonDataDir": str(var / "mason"),
            "MasonSessionDir": str(var / "session"),
            "LogToSTDERR": "warning",
            "LogToSyslog": "",
            "Timezone": "UTC",
            "BcryptCost": 4,
            "CorrespondAddress": "support@rt.test",
            "CommentAddress": "comment@rt.test",
            "MailCommand": "sendmailpipe",
            "SendmailPath": str(sendmail),
        }
        lines = [f"Set(${name}, {_perl(value)});" for name, value in settings.items()]
        (self.state_dir / "etc" / "RT_SiteConfig.pm").write_text("\n".join([*lines, "1;", ""]), encoding="utf-8")

    def _setup_database(self) -> None:
        (self.state_dir / "var" / "rt.sqlite").unlink(missing_ok=True)
        password_file = self.state_dir / "rootpw"
        password_file.write_text(ROOT_PASSWORD + "\n", encoding="utf-8")
        self._run(
            [SETUP_DATABASE, "--action", "init", "--skip-create", "--root-password-file", str(password_file)],
            "database set-up",
        )
        script = (
            _BOOTSTRAP.replace("__RT_LIB__", RT_LIB)
            .replace("__STAFF_USER__", STAFF_USER)
            .replace("__STAFF_ADDRESS__", STAFF_ADDRESS)
            .replace("__STAFF_PASSWORD__", STAFF_PASSWORD)
        )
        output = self._run(["perl", "-e", script], "bootstrap (rights, staff user, token)")
        (self.state_dir / "token").write_text(output.strip().splitlines()[-1] + "\n", encoding="utf-8")

    def _run(self, command: list[str], what: str) -> str:
        result = subprocess.run(
            command, env=self.environment(), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RequestTrackerError(f"RT {what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        return result.stdout

    def _launch(self) -> None:
        if _port_accepts(self.port):
            raise RequestTrackerError(f"port {self.port} is taken by something else")
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [RT_SERVER, "--host", HOST, "--port", str(self.port), "--max-workers", str(self.workers)],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: stop() signals master and workers at once
            )
        (self.state_dir / "rt-server.pid").write_text(f"{process.pid}\n")

    def _running_pid(self) -> int | None:
        """The server's pid if it is alive (a zombie waiting to be reaped counts as stopped)."""
        try:
            pid = int((self.state_dir / "rt-server.pid").read_text())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        if state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return None
        return pid

    def _answers(self) -> bool:
        try:
            self.rest("GET", "/rt")
        except (OSError, RequestTrackerError):
            return False
        return True

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self._running_pid() is None:
                break
            time.sleep(0.1)
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        raise RequestTrackerError(f"RT did not answer on {self.url} within {timeout} s; log:\n{log}")

    # -- REST helpers for tests ------------------------------------------

    def rest(
        self, method: str, path: str, body: Any = None, *, user: str | None = None, password: str | None = None
    ) -> Any:
        """One REST 2.0 call as root (token) or as `user` (basic auth); the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/REST/2.0{path}", data=data, method=method)
        if user is None:
            request.add_header("Authorization", f"token {self.token}")
        else:
            credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {credentials}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise RequestTrackerError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def create_queue(self, name: str) -> None:
        self.rest("POST", "/queue", {"Name": name, "CorrespondAddress": "", "CommentAddress": ""})

    def create_custom_field(self, name: str, queue: str) -> None:
        self.rest(
            "POST",
            "/customfield",
            {"Name": name, "Type": "Freeform", "MaxValues": 1, "LookupType": "RT::Queue-RT::Ticket", "Queue": queue},
        )

    def create_ticket(
        self,
        queue: str,
        subject: str,
        requestors: list[str],
        content: str,
        *,
        time_taken: int = 0,
        custom_fields: dict[str, str] | None = None,
        as_staff: bool = False,
    ) -> int:
        """A ticket made through REST (by root, or by the staff user); its id."""
        body: dict[str, Any] = {
            "Queue": queue,
            "Subject": subject,
            "Requestor": requestors,
            "Content": content,
            "ContentType": "text/plain",
            "TimeWorked": time_taken,
        }
        if custom_fields:
            body["CustomFields"] = custom_fields
        answer = self.rest("POST", "/ticket", body, **self._credentials(as_staff))
        return int(answer["id"])

    def reply(self, ticket: int, content: str, *, time_taken: int = 0, comment: bool = False) -> None:
        """The staff user answers (correspond) or notes (comment) on a ticket, recording time."""
        action = "comment" if comment else "correspond"
        body = {"Content": content, "ContentType": "text/plain", "TimeTaken": time_taken}
        self.rest("POST", f"/ticket/{ticket}/{action}", body, **self._credentials(True))

    def client_mail(
        self,
        queue: str,
        sender: str,
        subject: str,
        content: str,
        ticket: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        """Client mail through RT's mail gateway: a new ticket, or (with `ticket`) a reply to it; the ticket's id."""
        message = EmailMessage()
        for name, value in (headers or {}).items():
            message[name] = value
        message["From"] = sender
        message["To"] = "support@rt.test"
        message["Subject"] = f"[rt.test #{ticket}] {subject}" if ticket else subject
        message["Message-ID"] = f"<{time.time_ns()}@{sender.partition('@')[2]}>"
        message.set_content(content)
        form = urllib.parse.urlencode({"queue": queue, "action": "correspond", "message": message.as_string()})
        request = urllib.request.Request(f"{self.url}/REST/1.0/NoAuth/mail-gateway", data=form.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            result = answer.read().decode(errors="replace")
        if result.splitlines()[:1] != ["ok"]:
            raise RequestTrackerError(f"mail gateway refused the mail: {result[:500]}")
        if ticket is not None:
            return ticket
        # The gateway names the ticket only in RT's DevelMode: the queue's newest ticket is it.
        query = urllib.parse.urlencode({"query": f"Queue = '{queue}'", "orderby": "id", "order": "DESC"})
        return int(self.rest("GET", f"/tickets?{query}&per_page=1")["items"][0]["id"])

    def _credentials(self, as_staff: bool) -> dict[str, str]:
        return {"user": STAFF_USER, "password": STAFF_PASSWORD} if as_staff else {}


def _perl(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "undef" if text == "" else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
