"""The `psp` command: thin commands over the domain packages.

This module is the only place that exits. Any `PspError` (and any usage error) becomes one line
on stderr, `error: …`, and a non-zero exit code; since each command's work runs in one
transaction, a failed command has written nothing.
"""

from __future__ import annotations

import atexit
import gc
import getpass
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer._click import ClickException, Command, Context  # Typer ships its own Click
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup

from psp.commands.common import AppContext
from psp.config import database_url, load_settings
from psp.errors import PspError

# Options that may appear anywhere on the line (`psp client list --db URL` as well as
# `psp --db URL client list`): scripts written against the contract use both.
_GLOBAL_OPTIONS = ("--db", "--config", "--actor")

# Each command module, with the top-level commands its `register(app)` adds, in `psp --help`
# order. A module is imported only when one of its commands runs, so `psp poll` does not pay
# for the statements' PDF fonts or the migrations: start-up is most of a quick command's time.
# To add a command module, add its line here (tests/test_cli_registration.py checks the names).
COMMANDS: dict[str, tuple[str, ...]] = {
    "psp.commands.init": ("init",),
    "psp.commands.setup": ("demo",),
    "psp.commands.clients": ("client", "block"),
    "psp.commands.proposals": ("log", "proposals"),
    "psp.commands.ledger_commands": ("project", "balance", "report", "entries"),
    "psp.commands.intake": ("ingest", "quarantine"),
    "psp.commands.polling": ("poll", "mailboxes"),
    "psp.commands.sync": ("sync",),
    "psp.commands.rules": ("classify", "rules", "reclassify"),
    "psp.commands.notify": ("notify",),
    "psp.commands.statements": ("statements",),
    "psp.commands.web": ("serve", "portal", "staff"),
}
_MODULE_OF = {name: module for module, names in COMMANDS.items() for name in names}


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move global options (and their values) to the front, where the root command parses them."""
    front: list[str] = []
    rest: list[str] = []
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--":
            rest.extend(items[i:])
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_OPTIONS:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(items[i : i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class PspGroup(TyperGroup):
    """The root command: global options anywhere, every error as one line, commands loaded on demand."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def list_commands(self, ctx: Context) -> list[str]:
        return [*_MODULE_OF, *(name for name in super().list_commands(ctx) if name not in _MODULE_OF)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        module = _MODULE_OF.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            self._load(module)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in _MODULE_OF:
            for module in COMMANDS:  # a typo: suggest the closest of all commands
                self._load(module)
        return super().resolve_command(ctx, args)

    def _load(self, module: str) -> None:
        """Import a command module and add the commands it registers, built as the root's own.

        The cyclic garbage collector waits meanwhile: importing creates only objects that live
        until exit, and each full collection would walk all that is loaded so far (measured: a
        tenth of a quick command's start-up).
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            commands = typer.Typer(rich_markup_mode=self.rich_markup_mode)
            importlib.import_module(module).register(commands)
        finally:
            if collecting:
                gc.enable()
        for name, command in typer.main.get_group(commands).commands.items():
            self.commands.setdefault(name, command)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except PspError as exc:
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except NoArgsIsHelpError as exc:  # `psp client` alone: the help, not an error line
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=PspGroup,
    help="PSP Ledger: prepaid support time, from mail and tickets to the client's report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db_url: Annotated[str | None, typer.Option("--db", help="Database URL (default sqlite:///psp.db).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Configuration file (default ./psp.toml).")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", envvar="PSP_ACTOR", help="Who is acting, for the audit trail.")
    ] = None,
) -> None:
    settings = load_settings(config)
    ctx.obj = AppContext(
        settings=settings,
        database_url=database_url(db_url, settings),
        actor=actor or os.environ.get("USER") or getpass.getuser(),
    )
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    """The `psp` console script: run the command, then end the process without tearing it down.

    Freeing every module and object of SQLAlchemy, pydantic and the rest one by one takes
    0.2-0.3 s, a quarter of a quick command such as an idle poll. The exit handlers still run
    and the output is flushed; only when some other thread still runs, which a normal exit would
    wait for, does the process exit the usual way.
    """
    try:
        app()
        code: str | int | None = 0
    except SystemExit as exit_:
        code = exit_.code
    if threading.active_count() > 1:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
