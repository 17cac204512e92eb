"""Property: 2-5 replicas doing random puts (new ids and existing ones), field updates,
deletes, restores, array moves, inserts and removals, whole-list and whole-text rewrites
through update(), and text inserts and deletions, merged in random orders and subsets,
always converge to one state, and nothing anyone wrote is lost (a delete concurrent with
an edit keeps the edit; only what someone removed is gone)."""

from __future__ import annotations

import random
import string

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples

from castroom.core.document import CastDocument
from castroom.core.model import Role, Talent

TALENTS = ["t0", "t1", "t2"]
FIELDS = ["agent", "hair", "eyes", "contact", "union"]
#: Text tokens: single characters, none of them in the base text "note", some beyond
#: ASCII (pycrdt's Text offsets are UTF-8 bytes; edits count code points); one per step
#: at most (40 steps).
TOKENS = "éñç😀" + string.ascii_uppercase + string.digits + "abcdfghijklmpqrsuvwxyz"


def base() -> bytes:
    doc = CastDocument.create("Converge", production_id="P")
    for tid in TALENTS:
        doc.add(Talent, id=tid, name=tid.upper(), notes="note")
    doc.add(Role, id="r0", name="Maya", backups=["t0", "t1", "t2"])
    return doc.encode_update()


BASE = base()

op = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 4)),
    st.tuples(
        st.just("set"),
        st.integers(0, 4),
        st.sampled_from(TALENTS),
        st.sampled_from(["rate", "hair", "agent"]),
    ),
    st.tuples(st.just("delete"), st.integers(0, 4), st.sampled_from(TALENTS)),
    st.tuples(st.just("restore"), st.integers(0, 4), st.sampled_from(TALENTS)),
    st.tuples(st.just("move"), st.integers(0, 4), st.integers(0, 10), st.integers(0, 10)),
    st.tuples(st.just("insert"), st.integers(0, 4), st.integers(0, 10)),
    st.tuples(st.just("text"), st.integers(0, 4), st.sampled_from(TALENTS), st.integers(0, 30)),
    # put() of a whole entity over an id that exists (replicas may do it concurrently).
    st.tuples(
        st.just("put_same"),
        st.integers(0, 4),
        st.sampled_from(TALENTS),
        st.sampled_from(["rate", "hair", "agent"]),
    ),
    st.tuples(st.just("remove"), st.integers(0, 4), st.integers(0, 10)),
    st.tuples(st.just("rewrite_list"), st.integers(0, 4), st.integers(0, 2**16)),
    st.tuples(st.just("rewrite_text"), st.integers(0, 4), st.sampled_from(TALENTS)),
    st.tuples(st.just("untext"), st.integers(0, 4), st.sampled_from(TALENTS), st.integers(0, 30)),
    st.tuples(st.just("source_id"), st.integers(0, 4), st.sampled_from(TALENTS)),
    st.tuples(st.just("sync"), st.integers(0, 4), st.integers(0, 4)),
)


class Run:
    """Replicas plus a record of what was written, to check that nothing is lost."""

    def __init__(self, count: int) -> None:
        self.replicas = []
        self.log: list[bytes] = []  # every local update, to replay in random orders
        for _ in range(count):
            doc = CastDocument()
            doc.apply_update(BASE)
            doc.on_commit = lambda update, changes: self.log.append(update)
            self.replicas.append(doc)
        self.counter = 0
        self.text_tokens = 0
        self.created: set[str] = set()
        self.writes: dict[tuple[str, str], list[object]] = {}
        self.tokens: list[tuple[str, str]] = []
        self.inserted: set[str] = set()
        self.removed: set[object] = set()  # list items and text tokens someone removed
        # (talent, key) -> the last value written to that key of external_ids (a CRDT
        # map): each replica writes only its own key, as each member rates for themself.
        self.keyed: dict[tuple[str, str], str] = {}

    def unique(self) -> str:
        self.counter += 1
        return f"{self.counter:04d}"

    def token(self) -> str:
        """A text token: one character no other token (nor the base text) has. update()
        rewrites a text by a minimal character diff, so two concurrent rewrites that both
        keep a character shared by two tokens ("<00" of "<0002>" and "<0023>") merge
        character by character, as Yjs text should: multi-character tokens that share
        characters are not atomic."""
        self.text_tokens += 1
        return TOKENS[self.text_tokens - 1]

    def do(self, step: tuple) -> None:  # noqa: C901 - a test's random step dispatcher
        kind, who = step[0], step[1] % len(self.replicas)
        doc = self.replicas[who]
        if kind == "put":
            new_id = f"n{self.unique()}"
            doc.put(Talent(id=new_id, name=f"New {new_id}", rate=1))
            self.created.add(new_id)
        elif kind == "set":
            _, _, tid, field = step
            value: object = int(self.unique()) if field == "rate" else f"v{self.unique()}"
            doc.update(Talent, tid, {field: value})
            self.writes.setdefault((tid, field), []).append(value)
        elif kind == "source_id":
            tid, key, value = step[2], f"site{who}", f"x{self.unique()}"
            current = doc.get(Talent, tid, include_deleted=True).external_ids
            doc.update(Talent, tid, {"external_ids": {**current, key: value}})
            self.keyed[(tid, key)] = value
        elif kind == "delete":
            doc.delete(Talent, step[2])
        elif kind == "restore":
            doc.restore(Talent, step[2])
        elif kind == "move":
            size = len(doc.get(Role, "r0").backups)
            if size:
                doc.move_item(Role, "r0", "backups", step[2] % size, step[3] % size)
        elif kind == "insert":
            item = f"i{self.unique()}"
            doc.insert_item(Role, "r0", "backups", step[2], item)
            self.inserted.add(item)
        elif kind == "text":
            _, _, tid, at = step
            token = self.token()
            current = doc.get(Talent, tid, include_deleted=True).notes
            # Insert only at a token boundary (never inside the base text "note").
            cuts = [0, len(current)] + [i + 1 for i, c in enumerate(current) if c in TOKENS]
            doc.edit_text(Talent, tid, "notes", sorted(cuts)[at % len(cuts)], 0, token)
            self.tokens.append((tid, token))
        elif kind == "put_same":
            _, _, tid, field = step
            value = int(self.unique()) if field == "rate" else f"p{self.unique()}"
            current = doc.get(Talent, tid, include_deleted=True)
            doc.put(msgspec.structs.replace(current, **{field: value}))
            self.writes.setdefault((tid, field), []).append(value)
        elif kind == "remove":
            backups = doc.get(Role, "r0").backups
            if backups:
                self.removed.add(backups[step[2] % len(backups)])
                doc.remove_item(Role, "r0", "backups", step[2] % len(backups))
        elif kind == "rewrite_list":
            # update() with a whole new list: reordered, one item dropped, one added.
            backups = list(doc.get(Role, "r0").backups)
            random.Random(step[2]).shuffle(backups)
            if backups:
                self.removed.add(backups.pop())
            item = f"w{self.unique()}"
            self.inserted.add(item)
            doc.update(Role, "r0", {"backups": [*backups, item]})
        elif kind == "rewrite_text":
            # update() with a whole new text: the first token dropped, a new one appended.
            current = doc.get(Talent, step[2], include_deleted=True).notes
            tokens = tokens_in(current)
            if tokens:
                self.removed.add((step[2], tokens[0]))
                current = current.replace(tokens[0], "", 1)
            token = self.token()
            doc.update(Talent, step[2], {"notes": current + token})
            self.tokens.append((step[2], token))
        elif kind == "untext":
            # Delete one whole token with a splice.
            _, _, tid, pick = step
            current = doc.get(Talent, tid, include_deleted=True).notes
            tokens = tokens_in(current)
            if tokens:
                token = tokens[pick % len(tokens)]
                doc.edit_text(Talent, tid, "notes", current.index(token), len(token), "")
                self.removed.add((tid, token))
        elif kind == "sync":
            target = self.replicas[step[2] % len(self.replicas)]
            if target is not doc:
                target.apply_update(doc.encode_update(target.state_vector()))

    def merge_everything(self, rng: random.Random) -> None:
        for _ in range(2):
            order = list(range(len(self.replicas)))
            rng.shuffle(order)
            for i in order:
                sources = [j for j in order if j != i]
                rng.shuffle(sources)
                for j in sources:
                    a, b = self.replicas[i], self.replicas[j]
                    a.apply_update(b.encode_update(a.state_vector()))


def tokens_in(text: str) -> list[str]:
    return [c for c in text if c in TOKENS]


def typed_state(doc: CastDocument) -> tuple:
    return (
        [
            (t.id, t.deleted, t.rate, t.hair, t.agent, t.notes)
            for t in doc.all(Talent, include_deleted=True)
        ],
        doc.get(Role, "r0").backups,
    )


@settings(max_examples=examples(300))
@given(
    replicas=st.integers(2, 5),
    steps=st.lists(op, min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_replicas_converge_and_lose_nothing(replicas: int, steps: list, seed: int) -> None:
    rng = random.Random(seed)
    run = Run(replicas)
    for step in steps:
        run.do(step)
    run.merge_everything(rng)
    first = run.replicas[0]
    for other in run.replicas[1:]:
        assert other.to_data() == first.to_data()
        assert typed_state(other) == typed_state(first)
    assert first.invalid() == []
    # Nothing lost: created entities, the only write to a field (even if the entity was
    # deleted concurrently), every text insert, every inserted list item.
    stored = {t.id: t for t in first.all(Talent, include_deleted=True)}
    assert run.created <= set(stored)
    for (tid, field), values in run.writes.items():
        if len(values) == 1:
            assert getattr(stored[tid], field) == values[0]
        else:
            assert getattr(stored[tid], field) in values
    for tid, token in run.tokens:
        if (tid, token) not in run.removed:
            assert token in stored[tid].notes
        else:
            assert token not in stored[tid].notes  # removed once, never resurrected
    for (tid, key), value in run.keyed.items():  # concurrent keys of one map all survive
        assert stored[tid].external_ids[key] == value
    backups = first.get(Role, "r0").backups
    assert run.inserted - run.removed <= set(backups) and len(backups) == len(set(backups))
    # Every update delivered to a fresh replica in a random order (dependencies arriving
    # late) and with duplicates gives the same state too.
    shuffled = run.log + rng.sample(run.log, k=min(5, len(run.log)))
    rng.shuffle(shuffled)
    fresh = CastDocument()
    fresh.apply_update(BASE)
    for update in shuffled:
        fresh.apply_update(update)
    assert fresh.to_data() == first.to_data()


@settings(max_examples=examples(30))
@given(seed=st.integers(0, 2**32 - 1), replicas=st.integers(2, 5))
def test_delete_concurrent_with_edits_keeps_every_edit(seed: int, replicas: int) -> None:
    rng = random.Random(seed)
    run = Run(replicas)
    deleter = rng.randrange(replicas)
    run.replicas[deleter].delete(Talent, "t0")
    for i, doc in enumerate(run.replicas):
        if i != deleter:
            doc.update(Talent, "t0", {FIELDS[i]: f"edit-{i}"})
            doc.edit_text(Talent, "t0", "notes", 0, 0, f"[{i}]")
    run.merge_everything(rng)
    talent = run.replicas[0].get(Talent, "t0", include_deleted=True)
    assert talent.deleted
    for i in range(replicas):
        if i != deleter:
            assert f"[{i}]" in talent.notes
            assert getattr(talent, FIELDS[i]) == f"edit-{i}"
    run.replicas[0].restore(Talent, "t0")
    assert run.replicas[0].get(Talent, "t0").notes.endswith("note")
