"""Whether a one-shot sync really left both sides holding the same edits.

A relay can answer the handshake before it has loaded its copy (the stock
``@y/websocket-server`` with a persistence binds the stored state *after* it has sent its
step 1), so "nothing came back" is not "up to date". After the exchange the client asks
for the peer's state vector again and compares both ways: the peer must hold every edit
here (else they were not taken), and this workspace every edit the peer announced (else
some did not arrive). Waits are bounded; what is missing is said in words.
"""

from __future__ import annotations

from castroom.core import yupdate

#: How long a one-shot sync waits for the two sides to agree (seconds).
WAIT = 5.0
#: Pause between two confirmations (seconds).
RETRY = 0.25
#: A relay whose first state vector lacks edits held here may still be loading its copy:
#: listen this long for it to send them before confirming (seconds).
LAZY_WAIT = 1.5


def missing(mine: bytes, theirs: bytes) -> dict[int, int]:
    """Per client, how many of the edits in state vector ``mine`` ``theirs`` lacks."""
    other = yupdate.decode_state_vector(theirs)
    return {
        client: clock - other.get(client, 0)
        for client, clock in yupdate.decode_state_vector(mine).items()
        if clock > other.get(client, 0)
    }


def _count(gaps: dict[int, int]) -> str:
    edits = sum(gaps.values())
    writers = len(gaps)
    return (
        f"{edits} edit{'s' if edits != 1 else ''} by {writers} writer{'s' if writers != 1 else ''}"
    )


def gap(ours: bytes, theirs: bytes, *, ours_may_lead: bool = False) -> str:
    """What keeps two state vectors apart, in words ("" when they agree). With
    ``ours_may_lead`` (a read-only connection) only edits we lack count."""
    lacking_there = {} if ours_may_lead else missing(ours, theirs)
    lacking_here = missing(theirs, ours)
    parts = []
    if lacking_there:
        parts.append(f"the peer lacks {_count(lacking_there)} made or received here")
    if lacking_here:
        parts.append(f"this workspace lacks {_count(lacking_here)} the peer holds")
    return " and ".join(parts)


def maybe_loading(ours: bytes, announced: bytes) -> bool:
    """Whether the peer's first state vector lacks edits held here: then it may be a relay
    still loading its copy (or it really lacks them; waiting a little costs little)."""
    return yupdate.ahead(ours, announced)
