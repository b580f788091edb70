"""The `psp` subcommands, one module per domain."""
