"""A private, real Dovecot IMAP server for tests and benchmarks.

The ingest code talks IMAP to real mail servers, so its tests run against a
real Dovecot rather than a mock: STARTTLS, implicit TLS, IDLE, UIDVALIDITY
changes and dropped connections all behave the way they do in production.

Each :class:`DovecotServer` owns one state directory and writes everything
there: its own ``dovecot.conf`` (nothing from /etc/dovecot is included), a
self-signed certificate, the passwd-file with the users, the Maildirs, the
runtime sockets (``base_dir``), Dovecot's ``state_dir`` and the log. So an
instance never clashes with a system Dovecot or with another instance that
uses a different state directory and port base.

Defaults: 127.0.0.1, plain IMAP + STARTTLS on port 10143, imaps on 10144,
user ``support@example.com`` / ``psp-test-password``. Plaintext logins are
allowed, so ``security = "none"`` can be tested too.

As root (tests and CI), Dovecot refuses to serve mail as uid 0, so the IMAP
processes run as the system user ``mail`` and are chrooted into
``STATE/home``; the state dir may therefore sit in a private (0700) temp dir.
As any other user, every Dovecot process simply runs as that user.

Test helpers: :meth:`DovecotServer.change_uidvalidity` (``doveadm mailbox
update --uid-validity``), :meth:`DovecotServer.kick` (``doveadm kick``, drops
a user's connections), :meth:`DovecotServer.restart`, and
:meth:`DovecotServer.add_user`.

This is a plain module without pytest imports, so ``bench/`` can use it too.
Written for Dovecot 2.3 (Debian 12 ships 2.3.19); install it with
``scripts/services/install.sh``.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from tests.servers.tls import self_signed_certificate

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 10143
"""Plain IMAP (with STARTTLS) listens on the port base, imaps on port base + 1."""
DEFAULT_USER = "support@example.com"
DEFAULT_PASSWORD = "psp-test-password"

INSTALL_HINT = "run scripts/services/install.sh as root (installs dovecot-imapd and openssl)"

# Dovecot config values are written unquoted, so paths are limited to
# characters that need no quoting; user names end up in passwd-file lines
# and in home directory names, so ':' '/' and whitespace are refused.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@=-]+$")
_SAFE_USER = re.compile(r"^[A-Za-z0-9_.+@=-]+$")
# A unix socket path may hold at most 107 bytes; Dovecot's longest socket
# name below base_dir ("login/imap-urlauth", "indexer-worker", ...) is < 25.
_MAX_BASE_DIR_LENGTH = 80


class DovecotError(RuntimeError):
    """Dovecot could not be configured, started, stopped or administered."""


def find_free_port_base(host: str = DEFAULT_HOST, start: int = 20143, attempts: int = 200) -> int:
    """Return a port base whose two ports (base, base + 1) are both free now.

    Useful when several test workers or benchmarks each need their own
    instance; there is a small race between this check and Dovecot binding.
    """
    for port_base in range(start, start + 2 * attempts, 2):
        if not _port_accepts(host, port_base) and not _port_accepts(host, port_base + 1):
            return port_base
    raise DovecotError(f"no two free ports found in {start}..{start + 2 * attempts} on {host}")


class DovecotServer:
    """One private Dovecot instance, configured and controlled from Python.

    Usage::

        server = DovecotServer("/tmp/dovecot-state", port_base=10143)
        server.start()
        client = imapclient.IMAPClient(server.host, port=server.ssl_port,
                                       ssl_context=ssl.create_default_context(cafile=server.cafile))
        client.login(server.user, server.password)
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        port_base: int = DEFAULT_PORT_BASE,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        startup_timeout: float = 20.0,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self._validate_state_dir()
        self._port_base = port_base
        self._user = user
        self._password = password
        self._startup_timeout = startup_timeout

    # -- connection details ------------------------------------------------

    @property
    def host(self) -> str:
        """The only address Dovecot listens on."""
        return DEFAULT_HOST

    @property
    def port(self) -> int:
        """Plain IMAP port; clients upgrade with STARTTLS (or not, for security="none")."""
        return self._port_base

    @property
    def ssl_port(self) -> int:
        """Implicit TLS (imaps) port."""
        return self._port_base + 1

    @property
    def cafile(self) -> str:
        """Self-signed server certificate; pass it as the CA file to verify the server."""
        return str(self.state_dir / "tls" / "cert.pem")

    @property
    def user(self) -> str:
        """Login name of the default user (created on start)."""
        return self._user

    @property
    def password(self) -> str:
        """Password of the default user."""
        return self._password

    @property
    def config_path(self) -> Path:
        """The generated dovecot.conf, for `doveadm -c` calls of your own."""
        return self.state_dir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's log file; error messages point here."""
        return self.state_dir / "dovecot.log"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start Dovecot and wait until both ports answer.

        Idempotent: an instance already running from this state directory with
        the same configuration is reused; one running with a different
        configuration (e.g. another port base) is restarted. A lock file
        serialises concurrent callers (test workers, a benchmark).
        """
        with self._locked():
            config_changed = self._write_files()
            if self.is_running():
                if not config_changed:
                    self._wait_until_ready()
                    return
                self._stop_processes()
            self._ensure_ports_free()
            log_size_before = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._launch_daemon()
            try:
                self._wait_until_ready(log_size_before)
            except DovecotError:
                self._stop_processes()  # leave no half-started daemon behind
                raise

    def stop(self) -> None:
        """Stop Dovecot and all its processes; every client connection drops."""
        with self._locked():
            self._stop_processes()

    def _stop_processes(self) -> None:
        """Stop the master, then whatever is left of the instance.

        The master alone would not do: logged-in IMAP processes outlive it
        until they next talk to it, and it waits a second for its log
        process. So after the master has had a moment to shut its children
        down, the rest of the instance (recognisable by the process title
        "dovecot-<instance_name>/...") gets a SIGTERM too.
        """
        stopping: list[int] = []
        master = self._master_pid()
        if master is not None and self.is_running():
            _terminate(master)
            stopping.append(master)
            time.sleep(0.05)
        leftovers = self._instance_processes()
        for pid in leftovers:
            _terminate(pid)
        self._wait_for_exit(stopping + leftovers)

    def restart(self) -> None:
        """Stop and start again: every connection drops, mail and users stay."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """True if the Dovecot master of this state directory is alive."""
        pid = self._master_pid()
        return pid is not None and _is_alive(pid) and _read_proc(pid, "comm") == "dovecot"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "lock").open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- users and mailboxes -----------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """Create a user, or change its password; takes effect at once.

        Dovecot re-reads a changed passwd-file at most once a second, so a
        running server is told to reload (open connections stay up).
        """
        if not _SAFE_USER.match(user):
            raise DovecotError(f"user name {user!r} may only contain letters, digits and _.+@=-")
        if any(char in password for char in ":\n\r"):
            raise DovecotError("passwords may not contain ':' or line breaks (passwd-file format)")
        self._prepare_directories()
        users = self._read_users()
        users[user] = password
        self._write_users(users)
        # Create the home up front: Dovecot would log an error on first login.
        home = self.state_dir / "home" / user
        home.mkdir(exist_ok=True)
        os.chown(home, *_mail_owner())
        if self.is_running():
            self.doveadm("reload")

    def change_uidvalidity(self, mailbox: str = "INBOX", user: str | None = None) -> int:
        """Give a mailbox a new UIDVALIDITY and return it.

        Uses `doveadm mailbox update --uid-validity` (old value + 1) rather
        than deleting and recreating the mailbox, because INBOX cannot be
        deleted. The messages stay, but a client must treat every UID it
        cached as invalid, as after a server migration or restore. Dovecot
        disconnects sessions that have the mailbox selected ("IMAP session
        state is inconsistent, please relogin"); others see the new value
        on their next SELECT/STATUS.
        """
        user = user or self._user
        old = self.uidvalidity(mailbox, user)
        new = old + 1 if old < 0xFFFFFFFF else 1
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), mailbox)
        current = self.uidvalidity(mailbox, user)
        if current != new:
            raise DovecotError(f"UIDVALIDITY of {mailbox} is {current} after setting it to {new}")
        return new

    def uidvalidity(self, mailbox: str = "INBOX", user: str | None = None) -> int:
        """The mailbox's current UIDVALIDITY, as the server reports it."""
        output = self.doveadm("-f", "flow", "mailbox", "status", "-u", user or self._user, "uidvalidity", mailbox)
        match = re.search(r"uidvalidity=(\d+)", output)
        if match is None:
            raise DovecotError(f"unexpected `doveadm mailbox status` output: {output!r}")
        return int(match.group(1))

    def kick(self, user: str | None = None) -> None:
        """Drop every IMAP connection of a user, as a flaky network or server would.

        Returns only once those IMAP processes have exited: `doveadm kick`
        merely signals them, and a command the client sends meanwhile could
        still be answered.
        """
        user = user or self._user
        pids = self.connection_pids(user)
        self.doveadm("kick", user)
        self._wait_for_exit(pids)

    def connection_pids(self, user: str | None = None) -> list[int]:
        """IMAP process ids of a user's open connections (`doveadm who -1`)."""
        user = user or self._user
        rows = self.doveadm("-f", "tab", "who", "-1", user).splitlines()[1:]  # skip the header
        return [int(row.split("\t")[2]) for row in rows if row.startswith(f"{user}\t")]

    def doveadm(self, *arguments: str) -> str:
        """Run `doveadm -c <this config> ARGUMENTS...` and return its stdout."""
        command = [_binary("doveadm"), "-c", str(self.config_path), *arguments]
        return self._run(command, "doveadm " + " ".join(arguments))

    # -- files ---------------------------------------------------------------

    def _write_files(self) -> bool:
        """Write certificate, users and config; return True if the config changed."""
        self._prepare_directories()
        self._ensure_certificate()
        users = self._read_users()
        if self._user not in users or users[self._user] != self._password:
            self.add_user(self._user, self._password)
        config = self._render_config()
        if self.config_path.exists() and self.config_path.read_text() == config:
            return False
        self.config_path.write_text(config)
        return True

    def _prepare_directories(self) -> None:
        for subdir in ("run", "lib", "home", "tls"):
            (self.state_dir / subdir).mkdir(parents=True, exist_ok=True)
        # The mail processes create the users' homes in here.
        uid, gid = _mail_owner()
        os.chown(self.state_dir / "home", uid, gid)

    def _ensure_certificate(self) -> None:
        """Create the self-signed certificate once, so clients' cafile stays valid."""
        cert = Path(self.cafile)
        self_signed_certificate(cert, cert.with_name("key.pem"))

    @property
    def _users_path(self) -> Path:
        return self.state_dir / "users"

    def _read_users(self) -> dict[str, str]:
        users: dict[str, str] = {}
        if not self._users_path.exists():
            return users
        for line in self._users_path.read_text().splitlines():
            if not line.strip():
                continue
            name, password_field = line.split(":")[:2]
            users[name] = password_field.removeprefix("{PLAIN}")
        return users

    def _write_users(self, users: dict[str, str]) -> None:
        """Write the passwd-file atomically, so Dovecot never reads half of it."""
        # uid/gid stay empty: mail_uid/mail_gid in the config set them.
        lines = [f"{name}:{{PLAIN}}{password}::::{self._home_of(name)}::\n" for name, password in sorted(users.items())]
        temporary = self._users_path.with_suffix(".tmp")
        temporary.write_text("".join(lines))
        temporary.chmod(0o600)
        temporary.replace(self._users_path)

    def _home_of(self, user: str) -> str:
        """The user's home; as root, "/./" makes Dovecot chroot to state_dir/home.

        Dovecot never lets IMAP processes run as root, so as root they run as
        the `mail` user. The state dir is often inside a private (0700) temp
        dir that `mail` cannot enter; chrooting (done while still root) into
        state_dir/home makes the parents irrelevant.
        """
        if os.geteuid() == 0:
            return f"{self.state_dir}/home/./{user}"
        return f"{self.state_dir}/home/{user}"

    def _render_config(self) -> str:
        state = self.state_dir
        mail_uid, mail_gid = _mail_owner()
        if os.geteuid() == 0:
            # The auth processes would run as the `dovecot` user, which cannot
            # read the passwd-file in a private (0700) temp dir: run them as root.
            privileges = (
                f"valid_chroot_dirs = {state}/home\n"
                "service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}\n"
            )
        else:
            # Rootless Dovecot: every process runs as the invoking user, and
            # nothing can chroot.
            login_name = pwd.getpwuid(os.geteuid()).pw_name
            group_name = grp.getgrgid(os.getegid()).gr_name
            privileges = (
                f"default_internal_user = {login_name}\ndefault_login_user = {login_name}\n"
                f"default_internal_group = {group_name}\n"
                "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
            )
        return f"""\
# Generated by tests/servers/dovecot.py; rewritten on every start().
# Dovecot 2.3 syntax. Includes nothing from /etc/dovecot.
protocols = imap
mail_uid = {mail_uid}
mail_gid = {mail_gid}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
listen = {self.host}
instance_name = {self._instance_name}
base_dir = {state}/run
state_dir = {state}/lib
log_path = {self.log_path}
info_log_path = {self.log_path}
{privileges}
ssl = yes
ssl_cert = <{self.cafile}
ssl_key = <{state}/tls/key.pem
ssl_min_protocol = TLSv1.2
# Tests also exercise plaintext logins (security = "none").
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %u
auth_verbose = yes

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self._users_path}
}}
userdb {{
  driver = passwd-file
  args = {self._users_path}
}}

mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}

protocol imap {{
  # Concurrency tests open many connections for one user from 127.0.0.1.
  mail_max_userip_connections = 100
}}
"""

    # -- process helpers -----------------------------------------------------

    def _validate_state_dir(self) -> None:
        if not _SAFE_PATH.match(str(self.state_dir)):
            raise DovecotError(
                f"state directory {self.state_dir} may only contain letters, digits and _./+@=- "
                "(it is written unquoted into dovecot.conf); choose another path"
            )
        base_dir = self.state_dir / "run"
        if len(str(base_dir)) > _MAX_BASE_DIR_LENGTH:
            raise DovecotError(
                f"state directory {self.state_dir} is too long for Dovecot's unix sockets "
                f"(limit {_MAX_BASE_DIR_LENGTH - 4} characters); use a shorter path, e.g. under /tmp"
            )

    def _master_pid(self) -> int | None:
        pid_file = self.state_dir / "run" / "master.pid"
        try:
            return int(pid_file.read_text().strip())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # Dovecot writes the file in one go; an empty one means not started.

    @property
    def _instance_name(self) -> str:
        """Unique per state dir and port; Dovecot puts it in every process title."""
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:8]
        return f"psp-{self.port}-{digest}"

    def _instance_processes(self) -> list[int]:
        """Live processes of this instance, found by their title in /proc."""
        title_prefix = f"dovecot-{self._instance_name}/"
        return [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
            and _read_proc(int(entry.name), "cmdline").startswith(title_prefix)
            and _is_alive(int(entry.name))
        ]

    def _wait_for_exit(self, pids: list[int]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while any(_is_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot processes {pids} did not stop within {self._startup_timeout}s; "
                    f"see {self.log_path} or kill them by hand"
                )
            time.sleep(0.02)

    def _ensure_ports_free(self) -> None:
        for port in (self.port, self.ssl_port):
            if _port_accepts(self.host, port):
                raise DovecotError(
                    f"port {self.host}:{port} is already in use by another program; "
                    "give DovecotServer another port_base (see find_free_port_base())"
                )

    def _launch_daemon(self) -> None:
        """Run `dovecot -c CONF`, which forks the master into the background.

        The master inherits stdout/stderr, so they go to a file rather than a
        pipe: reading a pipe would wait for the daemon to exit.
        """
        startup_log = self.state_dir / "startup.log"
        with startup_log.open("w") as output:
            result = subprocess.run(
                [_binary("dovecot"), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            raise DovecotError(
                f"dovecot refused to start (exit {result.returncode}):\n"
                f"{startup_log.read_text().strip()}\nlog {self.log_path}:\n{self._log_tail()}"
            )

    def _wait_until_ready(self, log_offset: int | None = None) -> None:
        """Wait until plain IMAP greets and imaps completes a TLS handshake.

        With log_offset, fail fast on a "Fatal:" log line written after it:
        Dovecot keeps retrying a failing service instead of exiting.
        """
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._greets_on_plain_port() and self._handshakes_on_ssl_port():
                return
            if log_offset is not None and self.log_path.exists():
                with self.log_path.open("rb") as log:
                    log.seek(log_offset)
                    fatal = [line for line in log.read().decode(errors="replace").splitlines() if " Fatal: " in line]
                if fatal:
                    raise DovecotError("dovecot failed to start:\n" + "\n".join(fatal))
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not answer on {self.host}:{self.port}/{self.ssl_port} within "
                    f"{self._startup_timeout}s; see {self.log_path}\n{self._log_tail()}"
                )
            if not self.is_running():
                raise DovecotError(f"dovecot exited during startup; see {self.log_path}\n{self._log_tail()}")
            time.sleep(0.05)

    def _greets_on_plain_port(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as connection:
                return connection.recv(256).startswith(b"* OK")
        except OSError:
            return False

    def _handshakes_on_ssl_port(self) -> bool:
        context = ssl.create_default_context(cafile=self.cafile)
        try:
            with (
                socket.create_connection((self.host, self.ssl_port), timeout=2) as connection,
                context.wrap_socket(connection, server_hostname=self.host) as tls,
            ):
                return tls.recv(256).startswith(b"* OK")
        except OSError:  # includes ssl.SSLError
            return False

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log written)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _run(self, command: list[str], purpose: str) -> str:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DovecotError(
                f"could not {purpose} (exit {result.returncode}): {' '.join(command)}\n"
                f"{result.stderr.strip()}\nlog {self.log_path}:\n{self._log_tail()}"
            )
        return result.stdout


def _read_proc(pid: int, name: str) -> str:
    """A /proc/PID file as text ("" once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""  # gone, or not ours to look at (hidepid): either way not an instance process


def _is_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie waiting for its parent to reap it."""
    stat = _read_proc(pid, "stat")
    if not stat:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _terminate(pid: int) -> None:
    # ProcessLookupError: it exited on its own meanwhile, which is what we want.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _mail_owner() -> tuple[int, int]:
    """uid/gid the IMAP processes run as and own the Maildirs.

    Dovecot refuses to access mail as root, so root uses the system `mail`
    user (present on every Debian); anyone else simply uses themselves.
    """
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        mail = pwd.getpwnam("mail")
    except KeyError:
        raise DovecotError(
            "running as root needs the system user `mail` for mail storage; "
            "create it with `useradd --system --user-group mail`"
        ) from None
    return mail.pw_uid, mail.pw_gid


def _binary(name: str) -> str:
    """Find a program also in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise DovecotError(f"`{name}` not found; {INSTALL_HINT}")
    return found
