"""Ledger: clients, proposals, projects and the append-only minutes ledger, with its policy."""
