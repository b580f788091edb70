"""The root command's table of command modules says what each module really registers.

`psp` imports a command module only when one of its commands runs, going by the names in
`psp.cli.COMMANDS`; a name missing there would be a command nobody can reach.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer
import typer.main

from psp.cli import COMMANDS


@pytest.mark.parametrize("module", COMMANDS)
def test_the_table_names_every_command_the_module_registers(module: str) -> None:
    scratch = typer.Typer()
    importlib.import_module(module).register(scratch)
    registered = tuple(typer.main.get_group(scratch).commands)
    assert sorted(registered) == sorted(COMMANDS[module]), (
        f"psp/cli.py COMMANDS lists {COMMANDS[module]} for {module}, which registers {registered}"
    )


def test_no_command_name_is_taken_twice() -> None:
    names = [name for names in COMMANDS.values() for name in names]
    assert len(names) == len(set(names))


def test_the_poll_command_leaves_parsing_and_storing_unloaded_until_there_is_mail() -> None:
    """A poll from cron usually finds nothing new; it must not pay for the parser, the rules engine,
    the ledger's posting or the Request Tracker sync (they load with the first batch of mail)."""
    heavy = (
        "ingest.parsing",
        "ingest.prepared",
        "ingest.store",
        "classify.service",
        "ledger.posting",
        "ingest.rt_sync",
    )
    code = f"import sys, psp.cli, psp.commands.polling; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
