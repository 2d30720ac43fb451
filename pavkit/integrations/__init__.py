"""Adapters that plug pavkit's verifiers into other tools (each imports its tool; install the matching extra)."""
