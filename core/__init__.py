"""castroom core: the casting model, CRDT documents, storage, plugins and the CLI."""

__version__ = "0.1.0"
