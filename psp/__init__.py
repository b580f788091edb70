"""PSP Ledger: the application shell (command line, configuration, database, demo)."""
