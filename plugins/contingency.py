"""Built-in plugin: contingency (being written)."""
