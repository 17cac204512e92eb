"""Built-in plugin: an import inbox folder, ``castroom watch-inbox DIR``.

A file dropped into DIR is imported by the first importer whose ``claims(path)`` is true
(a CSV by ``csv``, a ``.fountain``/``.fdx`` by ``script``, a third-party format by its
plugin), then moved to ``DIR/done/``, or to ``DIR/failed/`` next to ``NAME.reason.txt``
saying why. A failed import writes nothing (see :mod:`castroom.core.importing`).

watchdog reports new files; the work itself happens on the calling thread (SQLite
connections belong to the thread that opened them), after the file has stopped growing,
so a file still being copied in is not read half-written. A periodic rescan catches any
event the platform dropped.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from castroom.core.api import (
    CastroomError,
    CommandContext,
    ImportCounts,
    Importer,
    ImportFailed,
    ImportResult,
    hookimpl,
    pass_command,
)

DONE = "done"
FAILED = "failed"
REASON_SUFFIX = ".reason.txt"
#: Names that are still being written by some other program.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")
SETTLE_SECONDS = 0.3  # a file whose size did not change for this long is complete
SETTLE_LIMIT = 30.0  # give up waiting for a file that keeps growing
RESCAN_SECONDS = 2.0
WATCHED_EVENTS = frozenset({"created", "moved", "modified", "closed"})


@dataclass(frozen=True)
class Outcome:
    path: Path  # where the file ended up
    ok: bool
    importer: str | None
    message: str


class Inbox:
    """One inbox folder feeding one production."""

    def __init__(
        self,
        directory: Path,
        importers: dict[str, Importer],
        run_import: Callable[[Importer, str], tuple[ImportResult, ImportCounts]],
        *,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.directory = directory
        self.importers = importers
        #: run_import(importer, path): runs it and applies what it read (or raises).
        self.run_import = run_import
        self.report = report
        if directory.exists() and not directory.is_dir():
            raise CastroomError(f"{directory} is not a folder")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / DONE).mkdir(exist_ok=True)
        (directory / FAILED).mkdir(exist_ok=True)

    @classmethod
    def for_context(
        cls, directory: Path, obj: CommandContext, report: Callable[[str], None]
    ) -> Inbox:
        """An inbox for a command's context (its plugins and current production)."""
        return cls(
            directory,
            obj.plugins.importers(),
            lambda importer, source: obj.run_import(importer, source, {}),
            report=report,
        )

    # -- one file -----------------------------------------------------------------------------

    def wanted(self, path: Path) -> bool:
        name = path.name
        return (
            path.parent == self.directory
            and path.is_file()
            and not name.startswith(".")
            and not name.endswith(REASON_SUFFIX)
            and not name.endswith(PARTIAL_SUFFIXES)
        )

    def claimant(self, path: Path) -> Importer | None:
        for importer in self.importers.values():
            if importer.claims is None:
                continue
            try:
                if importer.claims(path):
                    return importer
            except Exception:  # a plugin's broken claims() must not stop the inbox
                continue
        return None

    def process(self, path: Path) -> Outcome:
        """Import one file and move it to done/ or failed/."""
        importer = self.claimant(path)
        if importer is None:
            return self._fail(path, None, f"no importer claims {path.name}")
        try:
            result, counts = self.run_import(importer, str(path))
        except ImportFailed as exc:
            return self._fail(path, importer.name, "\n".join([str(exc), *exc.errors]))
        except CastroomError as exc:
            return self._fail(path, importer.name, str(exc))
        except Exception as exc:
            return self._fail(path, importer.name, f"{type(exc).__name__}: {exc}")
        target = _move(path, self.directory / DONE)
        message = (
            f"{path.name}: imported with {importer.name}: {counts.created} created, "
            f"{counts.updated} updated, {counts.unchanged} unchanged"
        )
        for warning in result.warnings:
            message += f"\n  warning: {warning}"
        self.report(message)
        return Outcome(target, True, importer.name, message)

    def _fail(self, path: Path, importer: str | None, reason: str) -> Outcome:
        target = _move(path, self.directory / FAILED)
        target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
        self.report(f"{path.name}: failed: {reason.splitlines()[0]}")
        return Outcome(target, False, importer, reason)

    # -- the folder ---------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if self.wanted(p))

    def process_pending(self) -> list[Outcome]:
        """Everything in the folder now (what ``--once`` does). A file still growing is left
        for the next look."""
        sizes = {}
        for path in self.pending():
            try:
                sizes[path] = path.stat().st_size
            except FileNotFoundError:
                continue
        if not sizes:
            return []
        time.sleep(SETTLE_SECONDS)
        outcomes = []
        for path, size in sizes.items():
            try:
                if path.stat().st_size != size:
                    continue
            except FileNotFoundError:
                continue
            outcomes.append(self.process(path))
        return outcomes

    def watch(self, seconds: float | None = None, *, stop: Callable[[], bool] | None = None):
        """Process files as they arrive, until ``seconds`` pass or ``stop()`` is true."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        arrived: queue.Queue[Path] = queue.Queue()

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in WATCHED_EVENTS:
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                arrived.put(Path(str(target)))

        observer = Observer()
        observer.schedule(Handler(), str(self.directory), recursive=False)
        observer.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        outcomes: list[Outcome] = []
        next_scan = time.monotonic() + RESCAN_SECONDS
        try:
            while not (stop and stop()):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                wait = min(0.2, max(0.0, (deadline or now + 1) - now))
                try:
                    path = arrived.get(timeout=wait)
                except queue.Empty:
                    path = None
                if path is not None and path.exists() and self.wanted(path) and _settled(path):
                    outcomes.append(self.process(path))
                if time.monotonic() >= next_scan:
                    outcomes.extend(self.process_pending())
                    next_scan = time.monotonic() + RESCAN_SECONDS
        except KeyboardInterrupt:
            pass
        finally:
            observer.stop()
            observer.join(timeout=5)
        return outcomes


def _settled(path: Path) -> bool:
    """Wait (bounded) until the file stops growing; False if it vanished or never settles."""
    deadline = time.monotonic() + SETTLE_LIMIT
    try:
        size = path.stat().st_size
        while time.monotonic() < deadline:
            time.sleep(SETTLE_SECONDS)
            now = path.stat().st_size
            if now == size:
                return True
            size = now
    except FileNotFoundError:
        return False
    return False


def _move(path: Path, folder: Path) -> Path:
    """Move into folder, never overwriting an earlier file of the same name."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S")
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{stamp}-{n}{path.suffix}"
            n += 1
    path.replace(target)
    return target


@click.command(name="watch-inbox")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--once", is_flag=True, help="Process the files there now, then exit.")
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Stop watching after this many seconds (default: until interrupted).",
)
@pass_command
def watch_inbox_cmd(obj: CommandContext, directory: str, once: bool, seconds: float | None) -> None:
    """Import every file dropped into DIRECTORY with the importer that claims it.

    Each file then moves to DIRECTORY/done/, or to DIRECTORY/failed/ with NAME.reason.txt."""
    box = Inbox.for_context(Path(directory), obj, report=click.echo)
    box.process_pending()
    if not once:
        limit = f" for {seconds:g}s" if seconds is not None else " (Ctrl-C to stop)"
        click.echo(f"Watching {directory}{limit}", err=True)
        box.watch(seconds=seconds)


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    cli.add_command(watch_inbox_cmd)
