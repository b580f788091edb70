"""Ingest: sources of support items (mail, helpdesk tickets) and storing each item once."""
