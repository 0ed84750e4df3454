"""labkit.widgets.bundle: plotly's FigureWidget front end as ASCII, the same JavaScript."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from labkit.widgets import bundle

_ESCAPE = re.compile(r"\\ud([89ab][0-9a-f]{2})\\ud([c-f][0-9a-f]{2})|\\u([0-9a-f]{4})")


def _unescape(text: str) -> str:
    """Every \\uXXXX escape (and surrogate pair) of ``text`` replaced by its character."""
    def char(m):
        if m.group(3):
            return chr(int(m.group(3), 16))
        return chr(0x10000 + ((int("d" + m.group(1), 16) - 0xD800) << 10) + int("d" + m.group(2), 16) - 0xDC00)
    return _ESCAPE.sub(char, text)


def test_ascii_js_escapes_exactly_the_non_ascii_characters():
    source = 'x=/[yzµm]/;s=/^闰?[一二]?月/m;o=/\ufffd/g;e="😀";a="\\u0041 plain"'
    for given in (source, source.encode("utf-8")):
        out = bundle.ascii_js(given)
        assert out.isascii()
        assert out == 'x=/[yz\\u00b5m]/;s=/^\\u95f0?[\\u4e00\\u4e8c]?\\u6708/m;o=/\\ufffd/g;e="\\ud83d\\ude00";a="\\u0041 plain"'
        assert _unescape(out) == _unescape(source)  # the same text up to how characters are written
    assert bundle.ascii_js("plain ascii") == "plain ascii"
    with pytest.raises(TypeError):
        bundle.ascii_js(42)
    with pytest.raises(UnicodeDecodeError):
        bundle.ascii_js(b"\xff\xfe broken")


def test_figure_widgets_hold_the_same_bundle_as_one_byte_per_character():
    import plotly.graph_objects as go
    from plotly.basewidget import BaseFigureWidget

    import labkit.widgets  # noqa: F401 - importing the widgets installs the ASCII bundle

    assert bundle.use_ascii_bundle()
    esm = go.FigureWidget()._esm
    assert isinstance(esm, str) and esm.isascii() and len(esm) > 1_000_000
    assert sys.getsizeof(esm) < len(esm) + 100  # compact ASCII storage (PEP 393), not 2 bytes a character
    original = BaseFigureWidget.__dict__["_esm"]
    assert isinstance(original, bundle.AsciiBundle) and str(original) is esm  # one string for every figure
    assert go.FigureWidget()._esm is esm
    path = Path(sys.modules["plotly"].__file__).parent / "package_data" / "widgetbundle.js"
    assert _unescape(esm) == _unescape(path.read_text(encoding="utf-8"))
    assert bundle.use_ascii_bundle()  # a second call changes nothing
    assert BaseFigureWidget.__dict__["_esm"] is original


def test_the_bundle_is_read_only_when_a_figure_needs_it(tmp_path):
    source = tmp_path / "bundle.js"
    source.write_bytes("const s = /µ/;".encode("utf-8"))
    lazy = bundle.AsciiBundle(source)
    source.unlink()  # nothing was read yet: the first str() would fail now
    with pytest.raises(FileNotFoundError):
        str(lazy)
    source.write_bytes("const s = /µ/;".encode("utf-8"))
    assert str(lazy) == "const s = /\\u00b5/;" and str(lazy) is str(lazy)
    source.unlink()  # read once and kept
    assert str(lazy) == "const s = /\\u00b5/;"
