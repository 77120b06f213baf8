"""Text that is safe to print: paths and lines with their control characters escaped.

Chapter ``spec/chapters/error-codes.rst``: ERR_01 (a message names the file it is about).

A directory entry's name may hold any byte but ``/`` and NUL: a newline in it would forge a
line of output (an operator or a log parser reading an error would see a second, invented
message), an escape sequence would drive the terminal. ``shown`` is the one place a path is
made printable in a message; ``one_line`` is the CLI's last line of defence for whole lines.
Non-ASCII characters stay (they are printable); the CLI's streams use ``backslashreplace`` so
that no locale turns them into a traceback.
"""

from __future__ import annotations


def _escape(ch: str) -> str:
    code = ord(ch)
    if code == 0x0A:
        return "\\n"
    if code == 0x09:
        return "\\t"
    if code == 0x0D:
        return "\\r"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unprintable(ch: str) -> bool:
    code = ord(ch)
    # C0 and C1 controls, DEL, the line and paragraph separators, and the lone surrogates
    # os.listdir uses for bytes that are not UTF-8 (surrogateescape)
    return (
        code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF
    )


def shown(path: str) -> str:
    """``path`` for a message: control characters and backslashes escaped, nothing else."""
    return "".join("\\\\" if ch == "\\" else _escape(ch) if _unprintable(ch) else ch for ch in path)


def one_line(text: str) -> str:
    """``text`` with every control character escaped, so it prints as exactly one line."""
    return "".join(_escape(ch) if _unprintable(ch) else ch for ch in text)
