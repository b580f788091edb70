"""Benchmarks for PSP Ledger; see BENCHMARKS.md. Not part of the installed product."""
