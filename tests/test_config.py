"""Configuration: defaults for every key, clear errors for unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from psp.config import DATABASE_URL_ENV, Settings, database_url, load_settings, parse_settings
from psp.errors import ConfigError

EXAMPLE = Path(__file__).parents[1] / "psp.example.toml"


def test_the_documented_example_is_exactly_the_defaults() -> None:
    example = load_settings(EXAMPLE)
    assert (example.policy, example.staff, example.modules, example.database, example.web) == (
        Settings().policy,
        Settings().staff,
        Settings().modules,
        Settings().database,
        Settings().web,
    )


def test_values_are_read_and_lists_become_tuples() -> None:
    settings = parse_settings(
        '[policy]\nlogged_fraction = 1\nrenewal_thresholds = [120, 60, 0]\n[staff]\ndomains = ["example.com"]',
        "test.toml",
    )
    assert settings.policy.logged_fraction == 1.0
    assert settings.policy.renewal_thresholds == (120, 60, 0)
    assert settings.staff.domains == ("example.com",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[policy]\nblock_minuts = 300", "test.toml: unknown key 'block_minuts' in \\[policy\\]"),
        ("[polcy]\n", "unknown section \\[polcy\\]"),
        ("[policy]\nblock_minutes = 'six hours'", "\\[policy\\].block_minutes must be int"),
        ("[policy]\nblock_minutes = true", "must be int"),
        ("[policy]\nlogged_fraction = 1.5", "must be in \\(0, 1\\]"),
        ("[policy]\ntimezone = 'Mars/Olympus'", "not a known time zone"),
        ("[staff]\naddresses = 'anna@example.com'", "must be a list"),
        ("[policy\n", "test.toml: "),
    ],
)
def test_bad_configuration_names_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(text, "test.toml")


def test_missing_file_is_an_error_but_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(None) == Settings()
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml")


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse_settings('[database]\nurl = "sqlite:///from-file.db"', "t")
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert database_url(None, settings) == "sqlite:///from-file.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite:///from-env.db")
    assert database_url(None, settings) == "sqlite:///from-env.db"
    assert database_url("sqlite:///from-flag.db", settings) == "sqlite:///from-flag.db"


def test_imap_accounts_are_checked() -> None:
    settings = parse_settings(
        '[[imap]]\nname = "support"\nuser = "s@example.com"\nsecurity = "starttls"\nport = 143', "t"
    )
    assert [(a.name, a.port, a.security, a.folders) for a in settings.imap] == [
        ("support", 143, "starttls", ("INBOX", "Sent"))
    ]
    with pytest.raises(ConfigError, match="security must be one of ssl, starttls, none"):
        parse_settings('[[imap]]\nuser = "s@example.com"\nsecurity = "tls"', "t")
    with pytest.raises(ConfigError, match="needs a user"):
        parse_settings("[[imap]]\nhost = 'mail.example.com'", "t")
    with pytest.raises(ConfigError, match="two \\[\\[imap\\]\\] accounts are named 'a'"):
        parse_settings('[[imap]]\nname = "a"\nuser = "x"\n[[imap]]\nname = "a"\nuser = "y"', "t")
