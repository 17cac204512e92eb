"""Attachments end to end, with real files made here: attach / list / show / export /
detach through the CLI, derivatives without metadata, hostile files refused with one
error and nothing stored, limits from the config, garbage collection and usage."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from media_helpers import (
    claimed_size,
    jpeg,
    pdf,
    pixel_bomb,
    png,
    truncated_jpeg,
    video,
    zip_named_jpeg,
)

from castroom.core import bundle as bundles
from castroom.core import media as media_core
from castroom.core.errors import CastroomError
from castroom.core.model import Candidate, Role, Talent
from castroom.core.workspace import Workspace
from tests.conftest import run_castroom
from tests.test_cli_core import fails, ok


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def castroom(cli):
    ok(cli("init", "--production", "Tides"))
    ok(cli("add", "talent", "name=Ada Stone"))
    ok(cli("add", "role", "name=Nora"))
    ok(cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora"))
    return cli


def stored_state(workspace: Path) -> tuple[list[str], int]:
    """Every file in the blob store (temporary ones too) and the update log's rows: what
    a refused attach must leave exactly as it was."""
    media = workspace / "media"
    files = sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())
    with sqlite3.connect(workspace / "castroom.db") as db:
        rows = db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
    return (files if media.exists() else []), rows


def listed(cli, *args: str) -> list[dict]:
    return json.loads(ok(cli("media", "list", *args, "--json")))


def test_attach_list_show_export_detach_round_trip(castroom, tmp_path: Path) -> None:
    photo = jpeg(tmp_path / "ada.jpg", (600, 800))
    reel = video(tmp_path / "reel.mp4", seconds=2.0)
    resume = pdf(tmp_path / "cv.pdf", pages=2)
    out = ok(castroom("attach", "talent", "Ada Stone", str(photo)))
    assert out.startswith("Attached ada.jpg to talent Ada Stone as headshot (image/jpeg")
    assert "600x800" in out
    ok(castroom("attach", "talent", "Ada Stone", str(reel)))
    ok(castroom("attach", "talent", "Ada Stone", str(resume)))
    tape = video(tmp_path / "tape.webm", seconds=1.0, codec="libvpx")
    done = castroom("attach", "candidate", "Ada Stone for Nora", str(tape), "--json")
    done = json.loads(ok(done))
    assert done["media"]["kind"] == "selftape" and done["media"]["mime"] == "video/webm"

    items = {i["media"]["name"]: i for i in listed(castroom)}
    assert sorted(items) == ["ada.jpg", "cv.pdf", "reel.mp4", "tape.webm"]
    head = items["ada.jpg"]["media"]
    looks = ("kind", "mime", "width", "height")
    assert [head[k] for k in looks] == ["headshot", "image/jpeg", 600, 800]
    assert head["hash"] == sha(photo) and head["bytes"] == photo.stat().st_size
    assert head["added_by"] and dt.datetime.fromisoformat(head["added_at"])
    assert head["thumbnail"] and head["poster"] is None and items["ada.jpg"]["present"]
    clip = items["reel.mp4"]["media"]
    assert [clip[k] for k in looks] == ["reel", "video/mp4", 160, 120]
    assert clip["duration"] == pytest.approx(2.0, abs=0.2) and clip["poster"] and clip["thumbnail"]
    assert items["cv.pdf"]["media"]["pages"] == 2 and items["cv.pdf"]["media"]["kind"] == "resume"
    assert items["tape.webm"]["entity_kind"] == "candidate"
    assert [i["media"]["name"] for i in listed(castroom, "candidate", "Ada Stone for Nora")] == [
        "tape.webm"
    ]
    assert len(listed(castroom, "talent", "Ada Stone")) == 3

    assert "ada.jpg (headshot), cv.pdf (resume)" in ok(castroom("show", "talent", "Ada Stone"))
    fails(castroom("set", "talent", "Ada Stone", "media={}"), "castroom attach")
    shown = ok(castroom("media", "show", head["hash"][:10]))
    assert "ada.jpg: image/jpeg" in shown and "attached to talent Ada Stone as headshot" in shown
    assert json.loads(ok(castroom("media", "show", "ada.jpg", "--json")))[0]["media"] == head

    dest = tmp_path / "out"
    dest.mkdir()
    ok(castroom("media", "export", "ada.jpg", str(dest)))
    assert (dest / "ada.jpg").read_bytes() == photo.read_bytes()
    fails(castroom("media", "export", "ada.jpg", str(dest)), "exists", "--force")
    ok(castroom("media", "export", "reel.mp4", str(dest / "poster.jpg"), "--part", "poster"))
    assert sha(dest / "poster.jpg") == clip["poster"]

    ok(castroom("attach", "talent", "Ada Stone", str(photo)))  # again: nothing new
    assert len(listed(castroom, "talent", "Ada Stone")) == 3
    assert ok(castroom("media", "detach", "talent", "Ada Stone", "reel")).startswith(
        "Detached reel.mp4 from talent Ada Stone"
    )
    assert sorted(i["media"]["name"] for i in listed(castroom, "talent", "Ada Stone")) == [
        "ada.jpg",
        "cv.pdf",
    ]
    fails(castroom("media", "detach", "talent", "Ada Stone", "reel"), "no attachment matching")
    # The blob stays until collected: the detach can be undone from history or a peer.
    assert (castroom.path / "media" / clip["hash"][:2] / clip["hash"][2:]).exists()


def test_derivatives_carry_no_exif_or_gps(castroom, tmp_path: Path) -> None:
    from PIL import Image

    photo = jpeg(tmp_path / "phone.jpg", (1200, 1600))
    with Image.open(photo) as original:  # the test's own file does carry them
        assert original.getexif().get_ifd(0x8825) and original.getexif().get(0x010F)
    ok(castroom("attach", "talent", "Ada Stone", str(photo)))
    head = listed(castroom)[0]["media"]
    ok(castroom("media", "export", "phone.jpg", str(tmp_path / "t.jpg"), "--part", "thumbnail"))
    thumb = tmp_path / "t.jpg"
    assert sha(thumb) == head["thumbnail"]
    with Image.open(thumb) as image:
        assert max(image.size) == 320 and image.format == "JPEG"
        assert dict(image.getexif()) == {} and "exif" not in image.info
        assert "icc_profile" not in image.info and "xmp" not in image.info
    assert b"Exif" not in thumb.read_bytes() and b"PhoneMaker" not in thumb.read_bytes()
    # The original is kept byte for byte (its hash is its name), metadata and all.
    ok(castroom("media", "export", "phone.jpg", str(tmp_path / "o.jpg")))
    assert (tmp_path / "o.jpg").read_bytes() == photo.read_bytes()


def test_a_png_with_transparency_and_a_pdf_get_thumbnails(castroom, tmp_path: Path) -> None:
    from PIL import Image

    ok(castroom("attach", "talent", "Ada Stone", str(png(tmp_path / "a.png"))))
    ok(castroom("attach", "talent", "Ada Stone", str(pdf(tmp_path / "cv.pdf", pages=1))))
    for item in listed(castroom):
        name = item["media"]["name"]
        ok(castroom("media", "export", name, str(tmp_path / f"{name}.t"), "--part", "thumbnail"))
        with Image.open(tmp_path / f"{name}.t") as image:
            assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= 320


def test_derivatives_are_made_once_per_file(castroom, tmp_path: Path) -> None:
    ok(castroom("add", "talent", "name=Bo Lind"))
    photo = jpeg(tmp_path / "shared.jpg")
    ok(castroom("attach", "talent", "Ada Stone", str(photo)))
    blobs = Workspace.open(castroom.path).blobs
    thumb = listed(castroom)[0]["media"]["thumbnail"]
    made = blobs.stat(thumb).st_mtime_ns
    ok(castroom("attach", "talent", "Bo Lind", str(photo)))
    both = listed(castroom)
    assert {i["media"]["thumbnail"] for i in both} == {thumb}
    assert blobs.stat(thumb).st_mtime_ns == made  # reused, not rewritten
    assert len(list(blobs.hashes())) == 2


@pytest.mark.parametrize(
    ("make", "kind", "words"),
    [
        (lambda d: zip_named_jpeg(d / "head.jpg"), "talent", ("head.jpg is a ZIP archive",)),
        (
            lambda d: pixel_bomb(d / "bomb.png"),
            "talent",
            ("10,000 x 10,000 pixels", "decompression bomb"),
        ),
        (
            lambda d: claimed_size(d / "huge.jpg", 2 * 1000**3),
            "talent",
            ("huge.jpg is 2.0 GB, over the headshot limit of 25.0 MB", "not stored"),
        ),
        (lambda d: truncated_jpeg(d / "cut.jpg"), "talent", ("starts like a JPEG", "damaged")),
        (lambda d: _text(d / "notes.pdf"), "talent", ("notes.pdf is text",)),
        (lambda d: _renamed_png(d / "face.mp4"), "candidate", ("a selftape must be",)),
        (lambda d: _fake_mp4(d / "fake.mp4"), "talent", ("starts like a video but cannot",)),
        (lambda d: _cut_video(d / "cut.mp4"), "talent", ("cut.mp4 starts like a video",)),
    ],
    ids=[
        "zip-as-jpeg",
        "pixel-bomb",
        "claimed-2GB",
        "truncated",
        "text-as-pdf",
        "kind-vs-type",
        "fake-mp4",
        "cut-mp4",
    ],
)
def test_a_hostile_file_is_one_error_and_nothing_is_stored(
    castroom, tmp_path: Path, make, kind: str, words: tuple[str, ...]
) -> None:
    bad = make(tmp_path)
    ref = "Ada Stone" if kind == "talent" else "Ada Stone for Nora"
    before = stored_state(castroom.path)
    extra = ("--as", "selftape") if kind == "candidate" else ()
    message = fails(castroom("attach", kind, ref, str(bad), *extra), *words)
    assert "media/tmp" not in message  # the store's temporary file is not the user's
    assert stored_state(castroom.path) == before
    assert listed(castroom) == []


def _text(path: Path) -> Path:
    path.write_text("Ada Stone\nCV\n")
    return path


def _renamed_png(path: Path) -> Path:
    return png(path)


def _fake_mp4(path: Path) -> Path:
    """An MP4 box header followed by noise."""
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + bytes(range(256)) * 40)
    return path


def _cut_video(path: Path) -> Path:
    """A real MP4 cut off before its index (the moov box is written last)."""
    whole = video(path.with_name("whole.mp4"), seconds=2.0).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def test_the_pixel_bomb_meets_pillows_guard_when_the_limit_is_raised(castroom, tmp_path) -> None:
    config = castroom.path / "config.toml"
    config.write_text(config.read_text() + "\n[media]\nmax_pixels = 1000000000\n")
    before = stored_state(castroom.path)
    fails(
        castroom("attach", "talent", "Ada Stone", str(pixel_bomb(tmp_path / "b.png"))),
        "over Pillow's limit",
        "decompression bomb",
    )
    assert stored_state(castroom.path) == before


def test_size_limits_per_kind_come_from_the_config(castroom, tmp_path: Path) -> None:
    config = castroom.path / "config.toml"
    config.write_text(config.read_text() + '\n[media.max_bytes]\nheadshot = "20 KB"\n')
    photo = jpeg(tmp_path / "big.jpg", (800, 800))
    assert photo.stat().st_size > 20_000
    before = stored_state(castroom.path)
    refused = castroom("attach", "talent", "Ada Stone", str(photo))
    fails(refused, "over the headshot limit of 20.0 KB")
    assert stored_state(castroom.path) == before
    ok(castroom("attach", "talent", "Ada Stone", str(photo), "--as", "other"))  # 100 MB
    config.write_text(config.read_text() + 'reel = "lots"\n')
    fails(castroom("media", "usage"), "media.max_bytes.reel", "not a size")


def test_refused_before_anything_is_read(castroom, tmp_path: Path) -> None:
    photo = jpeg(tmp_path / "a.jpg")
    fails(castroom("attach", "role", "Nora", str(photo)), "talent or a candidate")
    fails(castroom("attach", "talent", "Nobody", str(photo)), "no talent matching")
    fails(castroom("attach", "talent", "Ada Stone", str(tmp_path / "gone.jpg")), "cannot read")
    assert stored_state(castroom.path)[0] == []


def test_a_real_process_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert run_castroom("-w", ws, "init", "--production", "Tides").returncode == 0
    assert run_castroom("-w", ws, "add", "talent", "name=Ada Stone").returncode == 0
    bad = zip_named_jpeg(tmp_path / "a.jpg")
    done = run_castroom("-w", ws, "attach", "talent", "Ada Stone", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Error: a.jpg is a ZIP archive") and done.stderr.count("\n") == 1


def test_concurrent_attaches_on_two_machines_both_survive(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "a", member="ana") as a:
        production = a.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada Stone")
        bundles.create(a, tmp_path / "first.castroom")
        with Workspace.open(tmp_path / "b", member="bo") as b:
            bundles.apply(b, tmp_path / "first.castroom")
            one = media_core.attach(a.production(), Talent, "t1", jpeg(tmp_path / "1.jpg"))
            two = media_core.attach(
                b.production(), Talent, "t1", video(tmp_path / "2.mp4", seconds=1)
            )
            bundles.create(a, tmp_path / "from-a.castroom")
            bundles.create(b, tmp_path / "from-b.castroom")
            bundles.apply(a, tmp_path / "from-b.castroom")
            bundles.apply(b, tmp_path / "from-a.castroom")
            for ws in (a, b):
                media = ws.production().doc.get(Talent, "t1").media
                assert set(media) == {one.media.hash, two.media.hash}
                assert media[one.media.hash].added_by == "ana"
                assert media[two.media.hash].added_by == "bo"


def test_attached_media_is_kept_on_the_entity_and_other_fields_still_work(workspace) -> None:
    production = workspace.create_production("Tides")
    doc = production.doc
    doc.add(Talent, id="t1", name="Ada", headshot="https://example.test/ada.jpg")
    doc.add(Role, id="r1", name="Nora")
    doc.add(Candidate, id="c1", talent_id="t1", role_id="r1")
    assert doc.get(Talent, "t1").headshot == "https://example.test/ada.jpg"  # links stay text
    with pytest.raises(CastroomError, match="talent or a candidate"):
        media_core.owner_kind("role")


def test_garbage_is_kept_for_the_grace_days_then_collected(castroom, tmp_path: Path) -> None:
    photo = jpeg(tmp_path / "a.jpg")
    ok(castroom("attach", "talent", "Ada Stone", str(photo)))
    ok(castroom("attach", "talent", "Ada Stone", str(video(tmp_path / "r.mp4"))))
    usage = json.loads(ok(castroom("media", "usage", "--json")))
    assert usage["kinds"]["headshot"] == {"files": 1, "bytes": photo.stat().st_size}
    assert usage["kinds"]["reel"]["files"] == 1 and usage["kinds"]["derived"]["files"] == 3
    assert usage["missing"] == 0 and "unreferenced" not in usage["kinds"]
    ok(castroom("media", "detach", "talent", "Ada Stone", "a.jpg"))
    out = ok(castroom("compact"))
    assert "Kept 2 unused media file(s)" in out  # the photo and its thumbnail
    usage = json.loads(ok(castroom("media", "usage", "--json")))
    assert usage["kinds"]["unreferenced"]["files"] == 2
    with Workspace.open(castroom.path) as ws:
        later = media_core.collect(ws, now=dt.datetime.now().timestamp() + 29 * 86400)
        assert (later.removed, later.kept) == (0, 2)
        later = media_core.collect(ws, now=dt.datetime.now().timestamp() + 31 * 86400)
        assert (later.removed, later.kept) == (2, 0)
        assert not ws.blobs.has(sha(photo))
    usage = json.loads(ok(castroom("media", "usage", "--json")))
    assert "unreferenced" not in usage["kinds"] and usage["kinds"]["reel"]["files"] == 1


def test_a_deleted_talents_media_is_garbage_and_restoring_in_time_keeps_it(castroom, tmp_path):
    photo = jpeg(tmp_path / "a.jpg")
    ok(castroom("attach", "talent", "Ada Stone", str(photo)))
    ok(castroom("delete", "talent", "Ada Stone"))
    with Workspace.open(castroom.path) as ws:
        assert media_core.collect(ws).kept == 2
    ok(castroom("restore", "talent", "Ada Stone"))
    with Workspace.open(castroom.path) as ws:
        assert media_core.collect(ws, now=dt.datetime.now().timestamp() + 90 * 86400).removed == 0
        assert ws.blobs.has(sha(photo))


def test_grace_days_zero_collects_at_once(castroom, tmp_path: Path) -> None:
    config = castroom.path / "config.toml"
    config.write_text(config.read_text() + "\n[media]\ngrace_days = 0\n")
    ok(castroom("attach", "talent", "Ada Stone", str(jpeg(tmp_path / "a.jpg"))))
    ok(castroom("media", "detach", "talent", "Ada Stone", "headshot"))
    assert "Removed 2 unused media file(s)" in ok(castroom("compact"))
    assert stored_state(castroom.path)[0] == []


def _image(path: Path, fmt: str) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 48), "green").save(path, format=fmt)
    return path


def test_the_type_comes_from_the_bytes_never_the_name(castroom, tmp_path: Path) -> None:
    made = {
        "jpeg-named.png": ("image/jpeg", lambda p: _image(p, "JPEG")),
        "png-named.gif": ("image/png", lambda p: _image(p, "PNG")),
        "webp-named.jpg": ("image/webp", lambda p: _image(p, "WEBP")),
        "gif-named.webp": ("image/gif", lambda p: _image(p, "GIF")),
        "mov-named.mp4": ("video/quicktime", lambda p: video(p.with_suffix(".mov"))),
        "webm-named.mov": ("video/webm", lambda p: video(p.with_suffix(".webm"), codec="libvpx")),
        "pdf-named.txt": ("application/pdf", lambda p: pdf(p.with_suffix(".pdf"))),
    }
    for name, (_mime, make) in made.items():
        written = make(tmp_path / name)
        if written.name != name:
            written.rename(tmp_path / name)
        ok(castroom("attach", "talent", "Ada Stone", str(tmp_path / name), "--as", "other"))
    found = {i["media"]["name"]: i["media"]["mime"] for i in listed(castroom)}
    assert found == {name: mime for name, (mime, _) in made.items()}


def test_usage_names_what_takes_space_across_productions(castroom, tmp_path: Path) -> None:
    ok(castroom("attach", "talent", "Ada Stone", str(video(tmp_path / "r.mp4", seconds=3))))
    ok(castroom("attach", "candidate", "Ada Stone for Nora", str(jpeg(tmp_path / "c.jpg"))))
    with Workspace.open(castroom.path) as ws:  # a second production shares the store
        other = ws.create_production("Harbour")
        other.doc.add(Talent, id="t9", name="Bo Lind")
        media_core.attach(ws.production(other.id), Talent, "t9", tmp_path / "c.jpg")
    usage = json.loads(ok(castroom("media", "usage", "--json")))
    largest = [(e["production"], e["label"], e["files"]) for e in usage["largest"]]
    sizes = [e["bytes"] for e in usage["largest"]]
    assert sizes == sorted(sizes, reverse=True) and len(largest) == 3
    assert set(largest) == {
        ("Tides", "Ada Stone", 1),
        ("Tides", "Ada Stone for Nora", 1),
        ("Harbour", "Bo Lind", 1),
    }
    assert usage["kinds"]["headshot"]["files"] == 1  # one file, attached in both
    shown = ok(castroom("--production", "Tides", "media", "usage"))
    assert "largest" in shown and "Bo Lind" in shown
    # Detached in one production, a file another still uses is never collected.
    ok(castroom("--production", "Tides", "media", "detach", "candidate", "Ada Stone", "c.jpg"))
    with Workspace.open(castroom.path) as ws:
        assert media_core.collect(ws).kept == 0
        later = media_core.collect(ws, now=dt.datetime.now().timestamp() + 400 * 86400)
        assert later.removed == 0 and ws.blobs.has(sha(tmp_path / "c.jpg"))


def test_a_misspelt_media_setting_is_one_error_naming_it(castroom, tmp_path: Path) -> None:
    """A typo in ``[media]`` would silently leave the default in force: it is refused."""
    config = castroom.path / "config.toml"
    config.write_text(config.read_text() + "\n[media]\nmax_pixel = 1000\n")
    before = stored_state(castroom.path)
    fails(
        castroom("attach", "talent", "Ada Stone", str(jpeg(tmp_path / "a.jpg", (64, 64)))),
        "config media.max_pixel: not a media setting",
    )
    assert stored_state(castroom.path) == before
