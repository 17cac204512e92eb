"""Log lines that show what the network sent without letting it act: control characters
(ESC sequences a terminal would run, NUL, newlines that fake a line) from URLs and
frames nobody has authenticated yet are written as escapes (``\\x1b``)."""

from __future__ import annotations

import logging


def printable(text: str) -> str:
    """``text`` with every non-printable character written as an escape (``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class PrintableLogs(logging.Filter):
    """Escape control characters in a record's message (a terminal would run ESC
    sequences; NUL cuts lines in some log viewers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = printable(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


def printable_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`PrintableLogs` installed (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, PrintableLogs) for f in logger.filters):
        logger.addFilter(PrintableLogs())
    return logger
