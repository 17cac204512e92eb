"""How long a test waits for something that should happen."""

#: Seconds a test waits for something that should happen (a sync to arrive, a process to
#: start or stop, a server to answer, a page to show a change) before it fails. Generous on
#: purpose: the suite runs on two shared cores, at load 15 and more, where a one-second
#: step can take twenty. A wait returns as soon as its condition holds, so a long bound
#: costs nothing when things work; it only turns a hang into a clear failure before
#: pytest-timeout's 300 s. A wait for something that must NOT happen keeps a short bound
#: of its own.
PATIENCE = 90.0
