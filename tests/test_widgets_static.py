import ipywidgets as w
import plotly.graph_objects as go
import pytest

from labkit.widgets import WidgetSelfCheck
from labkit.widgets.static import enable_static_display, snapshot_html


def test_controls_show_their_current_values():
    html = snapshot_html(w.VBox([
        w.IntSlider(value=7, min=0, max=9, description="rounds"),
        w.HBox([w.Text(value="00ff", description="key"), w.Checkbox(value=True, description="clamp")]),
        w.Dropdown(options=[("AES", 1), ("DES", 2)], value=2, description="cipher"),
        w.Button(description="Go"),
        w.Label("a <label>"),
        w.Textarea(value="long text"),
    ]))
    assert "flex-direction:column" in html and "flex-direction:row" in html
    assert "value='7'" in html and "<code>7</code>" in html and "rounds" in html
    assert 'value="00ff"' in html and "checked" in html
    assert "<option selected>DES</option>" in html and "<option>AES</option>" in html
    assert "<button disabled>Go</button>" in html and "a &lt;label&gt;" in html and "long text" in html


def test_figures_become_plotly_charts_with_their_current_data():
    view = WidgetSelfCheck()
    view.slider.value = 5
    html = snapshot_html(view.widget)
    assert "Plotly.newPlot" in html and "25" in html and "Widgets work" in html
    assert "<script" in html and "plotly.min.js" not in html, "plotly.js is loaded once by the page"


def test_tabs_and_outputs():
    out = w.Output()
    out.outputs = ({"output_type": "stream", "name": "stdout", "text": "hello\n"},
                   {"output_type": "display_data", "data": {"text/html": "<b>bold</b>"}, "metadata": {}})
    tab = w.Tab([out, w.HTML("second")])
    tab.titles = ("first", "")
    html = snapshot_html(tab)
    assert "<summary>first</summary>" in html and "<summary>2</summary>" in html
    assert "<pre>hello\n</pre>" in html and "<b>bold</b>" in html and "second" in html


def test_needs_a_kernel():
    with pytest.raises(RuntimeError, match="IPython"):
        enable_static_display()


def test_heatmap_keeps_a_single_colour_bound():
    # plotly.js ignores zmax unless zmin is set too (seen in the browser test's screenshots)
    from labkit.widgets import heatmap

    fig = heatmap([[0, 1], [2, 256]], zmax=4)
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 4
    fig = heatmap([[3, 5]], zmin=4)
    assert fig.data[0].zmin == 4 and fig.data[0].zmax == 5
    assert heatmap([[3, 5]]).data[0].zmin is None


@pytest.mark.parametrize("control", [
    w.RadioButtons(options=["ECB", "CBC"], value="CBC"),
    w.ToggleButtons(options={"ECB": 0, "CBC": 1}, value=1),
    w.Select(options=[("ECB", "e"), ("CBC", "c")], value="c"),
])
def test_every_single_choice_widget_shows_its_option_labels(control):
    html = snapshot_html(control)
    assert "<option selected>CBC</option>" in html and "<option>ECB</option>" in html
