"""What collection hooks register: importers and exporters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CastroomError

if TYPE_CHECKING:  # annotations only: `castroom --help` must not import pycrdt
    from .model import Entity
    from .view import ProductionView

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """What an importer read. The core validates every entity, then writes them all in
    one transaction, or none. An entity whose id already exists updates it (importers
    reuse ids found through ``external_ids`` so re-imports never duplicate)."""

    entities: list[Entity] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Per-entity errors found while reading (e.g. ``"line 7: rate: must be >= 0"``);
    #: any error means nothing is written.
    errors: list[str] = field(default_factory=list)
    #: What the import found, for people (not a problem): a script re-import's
    #: "added 2 scenes: 12A, 12B", "omitted 1 scene: 30".
    report: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Importer:
    name: str
    description: str
    #: run(source, view, options) -> ImportResult. ``source`` is a path or URL.
    run: Callable[[str, ProductionView, dict[str, Any]], ImportResult]
    #: For ``watch-inbox``: does this importer take this file? None = never claims files.
    claims: Callable[[Path], bool] | None = None
    plugin: str = ""

    def __post_init__(self) -> None:
        check_name("importer", self.name)

    @property
    def takes_files(self) -> bool:
        """Whether it reads files (it claims some for ``watch-inbox``), so a file uploaded
        to the dashboard can be its source; the others read a URL."""
        return self.claims is not None

    def read(self, source: str, view: ProductionView, options: dict[str, Any]) -> ImportResult:
        """Run it; a plugin's bug is one :class:`CastroomError` naming the plugin."""
        try:
            return self.run(source, view, options)
        except CastroomError:
            raise
        except Exception as exc:
            raise CastroomError(
                f"importer {self.name!r} (plugin {self.plugin!r}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None


@dataclass(frozen=True, kw_only=True)
class Exporter:
    name: str
    description: str
    #: run(view, options) -> the exported file's content.
    run: Callable[[ProductionView, dict[str, Any]], str | bytes]
    suffix: str = ".txt"
    plugin: str = ""

    def __post_init__(self) -> None:
        check_name("exporter", self.name)

    def export(self, view: ProductionView, options: dict[str, Any]) -> bytes:
        """Run it: the file's bytes (text as UTF-8); a plugin's bug is one
        :class:`CastroomError` naming the plugin."""
        try:
            content = self.run(view, options)
        except CastroomError:
            raise
        except Exception as exc:
            raise CastroomError(
                f"exporter {self.name!r} (plugin {self.plugin!r}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)

    def file_suffix(self, options: dict[str, Any]) -> str:
        """The suffix of the file it writes with these options (``--format pdf``: .pdf)."""
        chosen = options.get("format")
        return f".{chosen}" if isinstance(chosen, str) and chosen.isalnum() else self.suffix


def check_name(what: str, name: str) -> None:
    if not _NAME.match(name):
        raise CastroomError(
            f"{what} name {name!r} must be lowercase letters, digits, '-' or '_' (max 32)"
        )
