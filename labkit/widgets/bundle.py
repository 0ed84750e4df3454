"""plotly's FigureWidget front end kept and sent as ASCII: half the bytes in every kernel.

Every ``go.FigureWidget`` is an anywidget whose ``_esm`` trait holds plotly's whole JavaScript
front end (``plotly/package_data/widgetbundle.js``, 4.96 MB in plotly 7.1), and the kernel sends
it in the JSON of each figure's ``comm_open`` message. The file is ASCII but for 25 characters (a
``µ``, a U+FFFD and some CJK digits, all inside regular-expression literals), and one character
above U+00FF makes CPython store the whole string with 2 bytes per character (PEP 393): 9.5 MiB
held for the session, and the message built from it (the JSON-escaped copy, the joined JSON
text, its UTF-8 bytes) repeats that size for every figure a cell creates.

:func:`use_ascii_bundle` (run when :mod:`labkit.widgets` is imported, before any figure exists)
replaces the class's ``_esm`` with the same source, read when the first figure widget is
created (:class:`AsciiBundle`), in which each non-ASCII character is written as its JavaScript escape ``\\uXXXX`` (a surrogate pair above U+FFFF). In a string, template or
regular-expression literal, and in an identifier, the escape denotes the same character
(ECMAScript 2023, sections 12.9.4, 12.9.6, 22.2.1), so the browser runs the same code; only a
raw template (``String.raw``) would see the escape itself, and the bundle has no non-ASCII
character in one. The browser check (``tests/test_browser.py``: JupyterLab in headless Chromium)
sees the figures draw with it. Measured with ``labkit-notebook-memory`` on a notebook that creates figure
widgets after importing torch and plotly: creating one raised the kernel's RSS by 24 MiB for a
moment with the original bundle and by 14 MiB with this one, and the held string is 4.7 MiB
instead of 9.5 MiB.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["AsciiBundle", "ascii_js", "use_ascii_bundle"]

_NON_ASCII_UTF8 = re.compile(rb"[\xc0-\xff][\x80-\xbf]*")  # one encoded character


def _escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # JavaScript strings are UTF-16: above the BMP, a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def ascii_js(source: bytes | str) -> str:
    """JavaScript source (UTF-8 bytes or text) with every non-ASCII character written as its
    ``\\uXXXX`` escape: pure ASCII, so CPython holds it with one byte per character.

    Bytes are escaped without decoding the whole text first (no 2-byte-per-character copy)."""
    if isinstance(source, str):
        if source.isascii():
            return source
        return "".join(c if c.isascii() else _escape(c) for c in source)
    if not isinstance(source, (bytes, bytearray)):
        raise TypeError(f"expected JavaScript source as bytes or str, got {type(source).__name__}")
    escaped = _NON_ASCII_UTF8.sub(lambda m: _escape(m.group().decode("utf-8")).encode("ascii"), bytes(source))
    return escaped.decode("ascii")


class AsciiBundle:
    """A JavaScript file's text as :func:`ascii_js` gives it, read on first use and kept.

    anywidget takes a widget class's ``_esm`` as ``str(value)`` when a widget is created, so a
    unit that never shows a figure never reads the bundle."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = ascii_js(self.path.read_bytes())
        return self._text


def use_ascii_bundle() -> bool:
    """Give ``plotly``'s FigureWidget class its front end as an ASCII string (once per process),
    read when the first figure widget is created.

    Returns True if the class now takes its front end from an :class:`AsciiBundle`, False if
    plotly has no file-based FigureWidget front end here (then nothing is changed)."""
    try:
        from plotly.basewidget import BaseFigureWidget
    except ImportError:
        return False
    esm = BaseFigureWidget.__dict__.get("_esm")
    if isinstance(esm, AsciiBundle):
        return True  # done already
    path = getattr(esm, "_path", None)  # anywidget's FileContents of the bundle, read on first use
    if not isinstance(path, Path) or not path.is_file():
        return False
    BaseFigureWidget._esm = AsciiBundle(path)
    return True
