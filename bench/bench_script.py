"""Benchmark: a feature-length screenplay (190 scenes) imported as Fountain and as PDF.

Figures:

- Fountain import: ``castroom import script`` as the importer runs it: parse, break down
  (joint cues, first appearances, eighths, silent characters), match and number, then
  validate and write every role and scene in one transaction;
- re-import of the same draft (every scene found again, nothing written);
- PDF import: the same script as screenplain renders it, read back by its layout;
- baseline: screenplain's own parse of the Fountain text (the floor of any Fountain
  import), and PDFium's runs of text of the PDF (the floor of any PDF import).
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from castroom.core.document import CastDocument
from castroom.core.importing import apply_import
from castroom.core.view import ProductionView
from castroom.plugins.screenplay import import_script

SCENES = 190
TARGET_SECONDS = 1.0
RUNS = 3
PLACES = ["KITCHEN", "HARBOUR WALL", "FERRY - BAR", "LIGHTHOUSE", "MARKET", "CAR - MOVING"]
PEOPLE = [f"PERSON {chr(65 + i)}" for i in range(26)] + ["WALT", "SKYLER", "MARA"]


def script(seed: int = 11) -> str:
    """A deterministic feature: 190 scenes of action and dialogue, a few joint cues."""
    rng = random.Random(seed)
    out = ["Title: Bench Feature", "Author: castroom", "", ""]
    for n in range(1, SCENES + 1):
        place = rng.choice(PLACES)
        out += [f"{rng.choice(['INT.', 'EXT.'])} {place} \u2013 {rng.choice(['DAY', 'NIGHT'])}", ""]
        cast = rng.sample(PEOPLE, rng.randint(2, 5))
        out += [f"{cast[0]} ({rng.randint(20, 70)}) waits. A NURSE passes with a tray.", ""]
        for _ in range(rng.randint(3, 12)):
            speaker = rng.choice(cast)
            words = " ".join(
                rng.choice(["well", "the", "tide", "never", "said"]) for _ in range(12)
            )
            out += [speaker, words.capitalize() + ".", ""]
        if n % 20 == 0:
            out += ["WALT & SKYLER", "Together, then.", ""]
    return "\n".join(out)


def best(run, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    text = script()
    with tempfile.TemporaryDirectory() as tmp:
        fountain = Path(tmp) / "feature.fountain"
        fountain.write_text(text, encoding="utf-8")
        pdf = Path(tmp) / "feature.pdf"
        screenplain = Path(sys.executable).with_name("screenplain")
        subprocess.run([str(screenplain), str(fountain), str(pdf)], check=True, timeout=600)

        def fresh(path: Path) -> tuple[CastDocument, object]:
            doc = CastDocument.create("Bench")
            counts = apply_import(doc, import_script(str(path), ProductionView(doc), {}))
            return doc, counts

        fresh(fountain)  # warm imports and caches
        first = best(lambda: fresh(fountain))
        doc, counts = fresh(fountain)
        again = best(
            lambda: apply_import(doc, import_script(str(fountain), ProductionView(doc), {}))
        )
        from_pdf = best(lambda: fresh(pdf))
        from castroom.plugins.script_formats import read_script

        def shape(path: Path) -> list[tuple]:
            return [
                (s.heading, s.characters, s.speeches, s.eighths)
                for s in read_script(str(path), {}).scenes
            ]

        # The figure means something only if the PDF reads as its Fountain does.
        assert shape(pdf) == shape(fountain), "the PDF does not read as its Fountain"

        from screenplain.parsers import fountain as fp

        raw = best(lambda: fp.parse(io.StringIO(text)))

        import pypdfium2 as pdfium

        def words() -> None:
            document = pdfium.PdfDocument(str(pdf))
            for i in range(len(document)):
                text = document[i].get_textpage()
                for rect in range(text.count_rects()):
                    text.get_text_bounded(*text.get_rect(rect))
            document.close()

        raw_pdf = best(words)
    verdict = "ok" if first <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"Fountain import of a {SCENES}-scene feature (best of {RUNS}): {first * 1000:.0f} ms "
        f"({counts}); target <= {TARGET_SECONDS:.0f} s: {verdict}"
    )
    print(f"  re-import of the same draft: {again * 1000:.0f} ms")
    print(
        f"  baseline, screenplain's parse alone: {raw * 1000:.0f} ms; "
        f"import / baseline = {first / raw:.1f}x"
    )
    print(
        f"  PDF import of the same script: {from_pdf * 1000:.0f} ms; PDFium's runs of text "
        f"alone: {raw_pdf * 1000:.0f} ms; import / baseline = {from_pdf / raw_pdf:.2f}x"
    )
    if first > TARGET_SECONDS:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
