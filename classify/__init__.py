"""Classify: the rules that tag each item and propose minutes, with their reasons."""
