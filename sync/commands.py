"""CLI commands for sync (being written)."""
