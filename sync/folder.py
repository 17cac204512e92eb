"""Shared-folder sync: productions travel as update files in a folder every device can see
(a synced drive, a network share, a USB stick carried between machines).

Layout, under ``PATH/castroom/``::

    <production_id>/<device_id>/manifest.json             who writes here, the title
    <production_id>/<device_id>/<seq>-<blake2b-128>.yupd   Yjs v1 updates

Rules that keep several writers and half-synced files safe:

- Each device writes only inside its own ``<device_id>`` folder, and only whole files:
  it writes a temporary dot-file in the same folder, fsyncs it, then renames it into
  place. Names carry the hash of the bytes (as automerge-repo's chunks do), so two
  writers never overwrite each other and a reader can tell a complete file from a
  half-copied one.
- A file whose bytes do not match its name's hash (a synced drive still copying it, a
  truncated copy) is skipped with a warning and read once it is complete; one that
  matches its hash but does not decode is refused with a warning and never merged.
- Each device exports only what is new since its last export (the state-vector diff,
  plus the delete set when it changed), and when its folder holds many files it merges
  them into one (the merge of the updates, never a re-creation of the content, so no
  peer duplicates anything) and removes the ones merged.
- What this workspace has merged from each device is remembered in the workspace's kv
  table, so every pass reads only new files. A production this workspace does not hold
  is adopted, which is how an empty workspace joins a crew through a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from castroom.core import model
from castroom.core.blobs import fsync_path
from castroom.core.crdt import check_update
from castroom.core.document import production_in
from castroom.core.errors import BadUpdate, CastroomError, UnsafeId
from castroom.core.storage import merge_all
from castroom.core.workspace import StoredProduction, Workspace
from castroom.core.yupdate import ahead, one_line

from .folder_media import sync_media
from .read_copies import Patcher

FOLDER_NAME = "castroom"
MANIFEST = "manifest.json"
FORMAT = 1
#: ``<seq>-<blake2b-128 hex>.yupd``; anything else in a device folder is ignored.
FILE_RE = re.compile(r"^(\d{1,12})-([0-9a-f]{32})\.yupd$")
#: Production and device folder names: ids, never paths (the model's one rule).
NAME_RE = re.compile(model.FOLDER_ID_PATTERN)
#: Merge this device's own files into one when it has more than this many.
COMPACT_AT = 32
#: Files larger than this are refused (a folder is not a place for a runaway file).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: In live mode, rescan even without a watchdog event this often (network drives drop
#: events) and look for local changes this often.
RESCAN_SECONDS = 5.0
POLL_SECONDS = 0.25

Echo = Callable[[str], Any]


class FolderSyncResult(msgspec.Struct, kw_only=True):
    """What one ``sync_folder`` call moved (summed over every pass in live mode)."""

    folder: str
    passes: int = 0
    imported_files: int = 0
    imported_bytes: int = 0
    exported_files: int = 0
    exported_bytes: int = 0
    compacted: int = 0
    adopted: list[str] = msgspec.field(default_factory=list)
    #: Attached files (blobs) taken from the folder and copied into it.
    media_in: int = 0
    media_out: int = 0
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def moved(self) -> bool:
        return bool(
            self.imported_files
            or self.exported_files
            or self.adopted
            or self.media_in
            or self.media_out
        )


class _DeviceState(msgspec.Struct, kw_only=True):
    merged: list[str] = msgspec.field(default_factory=list)  # file names merged
    bad: list[str] = msgspec.field(default_factory=list)  # complete but undecodable


class _State(msgspec.Struct, kw_only=True):
    """Per (folder, production), kept in the workspace's kv table."""

    seq: int = 0  # the last sequence number this device wrote
    sv: str = ""  # base64 state vector the folder already holds from us / we read
    ds: str = ""  # digest of the delete set at that point
    mark: int = 0  # the store log sequence number ``sv``/``ds`` account for
    files: dict[str, int] = msgspec.field(default_factory=dict)  # own file -> size
    devices: dict[str, _DeviceState] = msgspec.field(default_factory=dict)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _fatal(exc: BaseException) -> bool:
    """Errors that must stop the program (Yrs panics surface as BaseException and are
    not among them: they are a bad file's fault)."""
    return isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError)


def _undecodable(data: bytes) -> str | None:
    """Why ``data`` is not a Yjs v1 update, or None if it is (the checks every update
    gets, then a merge into a scratch document: nothing real is touched)."""
    try:
        check_update(data)
    except BadUpdate as exc:
        return str(exc)
    return None


def _write_atomic(directory: Path, name: str, data: bytes | Iterable[bytes]) -> None:
    """Write ``directory/name`` (bytes, or chunks) so that no reader ever sees it
    half-written: a dot-file in the same folder (same file system, so the rename is
    atomic), fsync, rename, and fsync the folder so the rename itself survives a crash."""
    tmp = directory / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash; never written through (it may be a planted link)
    # O_EXCL with O_NOFOLLOW: a symlink planted at the temporary name is not followed.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with open(fd, "wb") as handle:
        for chunk in [data] if isinstance(data, bytes) else data:
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / name)
    with contextlib.suppress(OSError):  # not every file system lets one fsync a folder
        fsync_path(directory)


def _real_folder(path: Path) -> Path:
    """``path`` as a real folder (made if missing): never through a symlink, which would
    send this device's writes outside the shared folder, and never over a file."""
    try:
        path.mkdir(exist_ok=True)
    except FileExistsError:
        pass  # a symlink or a file: said below
    except OSError as exc:
        raise CastroomError(
            f"cannot write to folder {path.parent}: {exc.strerror or exc}"
        ) from None
    if path.is_symlink():
        raise CastroomError(f"refusing to write through {path}: it is a symlink, not a folder")
    if not path.is_dir():
        raise CastroomError(f"cannot write to {path}: it is a file, not a folder")
    return path


def _plain_entries(folder: Path) -> list[Path]:
    """The real (not symlinked) sub-folders of ``folder`` whose names are plain ids."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if NAME_RE.match(e.name) and not e.is_symlink() and e.is_dir()]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One pass at a time per workspace and folder, across processes."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: passes are still idempotent
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class FolderSync:
    """Sync every production of a workspace with one shared folder."""

    def __init__(
        self,
        workspace: Workspace,
        path: Path,
        *,
        echo: Echo = print,
        compact_at: int = COMPACT_AT,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise CastroomError(f"no folder at {path} (create it, or mount the shared drive)")
        self.workspace = workspace
        self.path = path.resolve()
        self.root = self.path / FOLDER_NAME
        self.echo = echo
        self.compact_at = compact_at
        self.max_file_bytes = max_file_bytes
        self.device = workspace.identity.device_id
        self.origin = f"folder:{self.path}"
        self.key = hashlib.blake2b(str(self.path).encode(), digest_size=8).hexdigest()
        self.result = FolderSyncResult(folder=str(self.path))
        # Warn once per file state, not on every pass while a drive is still copying it.
        self._warned: set[tuple[str, int]] = set()
        _real_folder(self.root)

    # -- state ---------------------------------------------------------------------------

    def _state_key(self, production_id: str) -> str:
        return f"folder-sync:{self.key}:{production_id}"

    def _load_state(self, production_id: str) -> _State:
        raw = self.workspace.store.get_kv(self._state_key(production_id))
        if raw:
            try:
                return msgspec.json.decode(raw, type=_State)
            except msgspec.DecodeError:
                pass  # start over: re-reading files is harmless, merging is idempotent
        return _State()

    def _save_state(self, production_id: str, state: _State) -> None:
        self.workspace.store.set_kv(
            self._state_key(production_id), msgspec.json.encode(state).decode()
        )

    def _warn(self, message: str, key: tuple[str, int] | None = None) -> None:
        if key is not None:
            if key in self._warned:
                return
            self._warned.add(key)
        self.result.warnings.append(message)
        self.echo(f"warning: {message}")

    # -- one pass --------------------------------------------------------------------------

    def run_once(self) -> FolderSyncResult:
        """Read every other device's new files, then write this device's new changes."""
        before = (
            self.result.imported_files,
            self.result.exported_files,
            len(self.result.adopted),
        )
        with _locked(self.workspace.path / f".folder-sync-{self.key}.lock"):
            local = dict(self.workspace.productions())
            for production_id in self._folder_productions():
                if production_id not in local:
                    self._adopt(production_id)
            for production_id in [p for p, _ in self.workspace.productions()]:
                self._sync_production(production_id)
            media = sync_media(self.workspace, self.root, _real_folder, _write_atomic, self._warn)
        self.result.passes += 1
        self.result.media_in += media.copied_in
        self.result.media_out += media.copied_out
        after = (
            self.result.imported_files,
            self.result.exported_files,
            len(self.result.adopted),
        )
        if after != before:
            self.echo(
                f"folder {self.path}: merged {after[0] - before[0]} file(s),"
                f" wrote {after[1] - before[1]} file(s)"
                + (
                    f", adopted {after[2] - before[2]} production(s)"
                    if after[2] > before[2]
                    else ""
                )
            )
        if media.copied_in or media.copied_out:
            self.echo(
                f"folder {self.path}: media: took {media.copied_in} file(s),"
                f" copied {media.copied_out} file(s)"
            )
        return self.result

    def _folder_productions(self) -> list[str]:
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise CastroomError(f"cannot read folder {self.root}")
        return [e.name for e in _plain_entries(self.root)]

    def _devices(self, production_id: str) -> list[str]:
        """Other devices' folders (symlinked ones are not read: they point elsewhere)."""
        return [e.name for e in _plain_entries(self.root / production_id) if e.name != self.device]

    def _files(self, directory: Path) -> list[tuple[int, str, str]]:
        """(seq, hash, name) of the update files in a device folder, oldest first."""
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        out = []
        for name in names:
            match = FILE_RE.match(name)
            if match:
                out.append((int(match.group(1)), match.group(2), name))
        out.sort()
        return out

    def _read(self, directory: Path, name: str, expected: str) -> bytes | None:
        """A complete, intact file's bytes, or None (with a warning) if it is not yet."""
        path = directory / name
        try:
            if path.is_symlink():
                self._warn(f"skipped {path}: a symlink, not an update file", (str(path), -4))
                return None
            size = path.stat().st_size
            if size > self.max_file_bytes:
                self._warn(f"skipped {path}: {size} bytes is over the limit", (str(path), size))
                return None
            data = path.read_bytes()
        except FileNotFoundError:
            return None  # merged away by its writer's compaction since we listed it
        except OSError as exc:
            self._warn(f"skipped {path}: cannot read it ({exc}); will retry", (str(path), -1))
            return None
        if _digest(data) != expected:
            self._warn(
                f"skipped {path}: incomplete or corrupt ({len(data)} bytes, hash mismatch);"
                " will retry once it is complete",
                (str(path), len(data)),
            )
            return None
        return data

    def _new_files(
        self, production_id: str, device: str, seen: _DeviceState
    ) -> tuple[list[tuple[str, bytes]], set[str]]:
        """(new intact files not merged yet, names of every update file present)."""
        directory = self.root / production_id / device
        files = self._files(directory)
        present = {name for _, _, name in files}
        done = set(seen.merged) | set(seen.bad)
        fresh: list[tuple[str, bytes]] = []
        for _, digest, name in files:
            if name in done:
                continue
            data = self._read(directory, name, digest)
            if data is not None:
                fresh.append((name, data))
        return fresh, present

    def _adopt(self, production_id: str) -> None:
        """Create a production this workspace does not hold from the folder's files."""
        blobs: list[bytes] = []
        states: dict[str, _DeviceState] = {}
        for device in self._devices(production_id):
            fresh, _ = self._new_files(production_id, device, _DeviceState())
            good = self._decodable(production_id, device, fresh)
            states[device] = _DeviceState(merged=[n for n, _ in good])
            blobs.extend(data for _, data in good)
        if not blobs:
            return
        try:
            merged = merge_all(blobs)
            found = production_in(merged)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._warn(
                f"skipped production folder {production_id}: {one_line(exc)}", (production_id, 0)
            )
            return
        if found is None:
            return  # nothing but fragments so far: wait for the rest
        if found != production_id:
            self._warn(
                f"skipped production folder {production_id}: it holds production {found}",
                (production_id, 1),
            )
            return
        production, _ = self.workspace.adopt(production_id, merged, origin=self.origin)
        state = self._load_state(production_id)
        state.devices.update(states)
        # What we just adopted is the folder's own content: nothing to write back.
        self._mark_exported(production, state)
        self._save_state(production_id, state)
        self.result.imported_files += sum(len(s.merged) for s in states.values())
        self.result.imported_bytes += sum(len(b) for b in blobs)
        self.result.adopted.append(production_id)
        title = self._title(production_id) or found
        short = self.workspace.short_ids()[production_id]
        self.echo(f"adopted production {title!r} ({short}) from {self.path}")

    def _decodable(
        self, production_id: str, device: str, fresh: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """Drop (with a warning) intact files that still are not Yjs updates."""
        good = []
        for name, data in fresh:
            problem = _undecodable(data)
            if problem:
                path = self.root / production_id / device / name
                self._warn(f"refused {path}: {problem}", (str(path), len(data)))
                continue
            good.append((name, data))
        return good

    def _title(self, production_id: str) -> str | None:
        for device in self._devices(production_id):
            try:
                manifest = json.loads((self.root / production_id / device / MANIFEST).read_text())
                if isinstance(manifest.get("title"), str):
                    return str(manifest["title"])
            except (OSError, ValueError, AttributeError):
                continue
        return None

    def _sync_production(self, production_id: str) -> None:
        try:
            model.folder_id(production_id, "production id")
        except UnsafeId as exc:  # held from before ids were checked: never a folder name
            self._warn(f"not syncing it through a folder: {exc}", (production_id, 2))
            return
        production = self.workspace.production(production_id)
        production.refresh()
        state = self._load_state(production_id)
        self._export(production, state)
        self._import(production, state)
        self._save_state(production_id, state)

    # -- reading others' files ------------------------------------------------------------

    def _import(self, production: StoredProduction, state: _State) -> None:
        assert production.id is not None
        production_id = production.id
        clean_before = self._clean(production, state)
        devices = self._devices(production_id)
        for device in devices:
            seen = state.devices.setdefault(device, _DeviceState())
            fresh, present = self._new_files(production_id, device, seen)
            # Forget names merged away by their writer's compaction.
            seen.merged = [n for n in seen.merged if n in present]
            seen.bad = [n for n in seen.bad if n in present]
            good = self._decodable(production_id, device, fresh)
            names = {name for name, _ in good}
            seen.bad.extend(name for name, _ in fresh if name not in names)
            if not good:
                continue
            # Usually one merge of everything new; one file at a time if that fails.
            merged: list[tuple[str, bytes]] = []
            if len(good) > 1 and self._apply(production, device, good) is None:
                merged = good
            else:
                for name, data in good:
                    problem = self._apply(production, device, [(name, data)])
                    if problem is None:
                        merged.append((name, data))
                        continue
                    path = self.root / production_id / device / name
                    self._warn(f"refused {path}: {problem}", (str(path), -2))
                    seen.bad.append(name)
            seen.merged.extend(name for name, _ in merged)
            self.result.imported_files += len(merged)
            self.result.imported_bytes += sum(len(d) for _, d in merged)
        for gone in set(state.devices) - set(devices):
            del state.devices[gone]
        if clean_before:
            self._mark_exported(production, state)

    def _apply(
        self, production: StoredProduction, device: str, files: list[tuple[str, bytes]]
    ) -> str | None:
        """Merge files into the production durably; why not, if a file is at fault (the
        document and its log are then as they were). Other failures (the store refusing
        the write) raise, and mark no file bad."""
        try:
            update = merge_all([data for _, data in files]) if len(files) > 1 else files[0][1]
        except BaseException as exc:
            if _fatal(exc):
                raise
            return f"cannot merge: {one_line(exc)}"
        try:
            production.apply_update(update, origin=self.origin, device=device)
        except BadUpdate as exc:
            # The file's fault (CastDocument.apply_update turns a Yrs panic into this
            # too, after rebuilding the document). Anything else, such as a storage
            # error, is not: it propagates, and the file is read again on a later pass.
            return str(exc)
        return None

    # -- writing our own files ---------------------------------------------------------------

    def _log_since(self, production_id: str, mark: int) -> tuple[int, int]:
        """(last log sequence number, how many entries after ``mark`` came from elsewhere
        than this folder): the store's log tells whether the document holds anything the
        folder may lack."""
        return self.workspace.store.log_since(production_id, mark, origin=self.origin)

    def _clean(self, production: StoredProduction, state: _State) -> bool:
        assert production.id is not None
        _, foreign = self._log_since(production.id, state.mark)
        return foreign == 0

    def _mark_exported(self, production: StoredProduction, state: _State) -> None:
        """Everything the document holds is now in the folder (ours or read from it)."""
        assert production.id is not None
        last, foreign = self._log_since(production.id, state.mark)
        if foreign:
            return  # another process committed meanwhile: export it on the next pass
        doc = production.doc
        with doc.silenced_access():
            sv = doc.state_vector()
            state.ds = _digest(doc.encode_update(sv))
        state.sv = b64encode(sv).decode()
        state.mark = max(state.mark, last)

    def _export(self, production: StoredProduction, state: _State) -> None:
        assert production.id is not None
        directory = _real_folder(_real_folder(self.root / production.id) / self.device)
        doc = production.doc
        self._repair(production, state, directory)
        # Only what the document has merged is exported; later commits by other
        # processes stay after the mark and are exported on the next pass.
        last = production.seen
        with doc.silenced_access():
            sv = doc.state_vector()
            known = b64decode(state.sv) if state.sv else b""
            delete_set = doc.encode_update(sv)
            new_structs = ahead(sv, known) if known else True
            if new_structs or _digest(delete_set) != state.ds:
                update = doc.encode_update(known) if known else doc.encode_update()
                self._write(directory, state, update)
            state.sv = b64encode(sv).decode()
            state.ds = _digest(delete_set)
        state.mark = max(state.mark, last)
        self._write_manifest(production, directory)
        if len(state.files) > self.compact_at:
            self._compact(directory, state)

    def _write(self, directory: Path, state: _State, data: bytes) -> None:
        existing = [seq for seq, _, _ in self._files(directory)]
        state.seq = max([state.seq, *existing]) + 1
        name = f"{state.seq:08d}-{_digest(data)}.yupd"
        try:
            _write_atomic(directory, name, data)
        except OSError as exc:
            raise CastroomError(f"cannot write to folder {directory}: {exc}") from None
        state.files[name] = len(data)
        self.result.exported_files += 1
        self.result.exported_bytes += len(data)

    def _repair(self, production: StoredProduction, state: _State, directory: Path) -> None:
        """If one of our own files went missing or was damaged (a truncated copy, a
        cleaned-up folder), write our whole document again and drop the damaged files,
        so the folder keeps holding everything we ever wrote."""
        damaged = []
        for name, size in state.files.items():
            try:
                ok = (directory / name).stat().st_size == size
            except OSError:
                ok = False
            if not ok:
                damaged.append(name)
        if not damaged:
            return
        self._warn(
            f"{len(damaged)} of this device's files in {directory} were damaged or"
            " removed: writing this device's copy again"
        )
        for name in damaged:
            del state.files[name]
            with contextlib.suppress(OSError):
                (directory / name).unlink()
        with production.doc.silenced_access():
            self._write(directory, state, production.doc.encode_update())

    def _compact(self, directory: Path, state: _State) -> None:
        """Merge our own files into one, then delete exactly the ones merged."""
        blobs, names = [], []
        for name in list(state.files):
            match = FILE_RE.match(name)
            data = self._read(directory, name, match.group(2)) if match else None
            if data is None:
                return  # _repair will deal with it on the next pass
            blobs.append(data)
            names.append(name)
        merged = merge_all(blobs)
        self._write(directory, state, merged)
        for name in names:
            del state.files[name]
            with contextlib.suppress(OSError):
                (directory / name).unlink()
        self.result.compacted += 1

    def _write_manifest(self, production: StoredProduction, directory: Path) -> None:
        identity = self.workspace.identity
        try:
            title = production.doc.production.title
        except CastroomError:
            title = ""
        manifest = {
            "format": FORMAT,
            "production_id": production.id,
            "title": title,
            "device_id": identity.device_id,
            "device_name": identity.device_name,
            "member": identity.member,
        }
        data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        path = directory / MANIFEST
        try:
            if path.read_bytes() == data:
                return
        except OSError:
            pass
        _write_atomic(directory, MANIFEST, data)

    # -- live -------------------------------------------------------------------------------

    def _live_pass(self) -> None:
        """One pass; a folder that went away (a USB stick pulled out, a network drive
        dropped) is reported once and retried, rather than ending the watch."""
        try:
            self.run_once()
        except (CastroomError, OSError) as exc:
            self._warn(f"folder sync pass failed: {exc}; will retry", (str(exc), -3))
        else:
            self._warned = {key for key in self._warned if key[1] != -3}

    def run_live(self, stop: threading.Event, *, rescan: float = RESCAN_SECONDS) -> None:
        """Pass after pass until ``stop`` is set: on a file event in the folder, on a local
        change (another process's commit to the workspace), and every ``rescan`` seconds."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        dirty = threading.Event()
        own = os.sep + self.device + os.sep

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                src = str(event.src_path)
                if own in src or os.path.basename(src).startswith("."):
                    return  # our own writes and temporary files
                dirty.set()

        observer = Observer()
        try:
            observer.schedule(Handler(), str(self.root), recursive=True)
            observer.start()
        except OSError as exc:  # gone already, or out of inotify watches: rescans still run
            self._warn(f"cannot watch {self.root} ({exc}); rescanning every {rescan:g} s")
        patcher = Patcher(self.workspace)  # the read copies of what the passes merged
        try:
            self._live_pass()
            version = self.workspace.store.data_version()
            last = time.monotonic()
            while not stop.is_set():
                dirty.wait(POLL_SECONDS)
                if stop.is_set():
                    break
                patcher.round()
                now = self.workspace.store.data_version()
                if dirty.is_set() or now != version or time.monotonic() - last > rescan:
                    dirty.clear()
                    version = now
                    last = time.monotonic()
                    self._live_pass()
        finally:
            if observer.is_alive():
                observer.stop()
                observer.join(timeout=5)


def sync_folder(
    workspace: Workspace,
    path: Path,
    *,
    live: bool = False,
    echo: Echo = print,
    stop: threading.Event | None = None,
    compact_at: int = COMPACT_AT,
    rescan: float = RESCAN_SECONDS,
) -> FolderSyncResult:
    """Sync every production of ``workspace`` with the shared folder ``path``.

    One pass by default; with ``live`` keep watching (watchdog) and pushing local changes
    until ``stop`` is set or the process is interrupted (Ctrl-C).
    """
    syncer = FolderSync(workspace, Path(path), echo=echo, compact_at=compact_at)
    if not live:
        result = syncer.run_once()
        if not result.moved:
            echo(f"folder {syncer.path}: up to date")
        return result
    echo(f"watching {syncer.path} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        syncer.run_live(stop or threading.Event(), rescan=rescan)
    return syncer.result
