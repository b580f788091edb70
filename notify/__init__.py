"""Notify: renewal notices and monthly statements by email."""
