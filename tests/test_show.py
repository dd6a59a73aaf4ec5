"""show_source displays the library's own code: the text of the function, named."""

from mlp_core.book.show import show_source
from mlp_core.core import batched


def test_one_function_is_its_source_named():
    src = show_source(batched.weight_gradient)
    text = repr(src)
    assert text.startswith("# mlp_core.core.batched.weight_gradient\n")
    assert "def weight_gradient(A_prev, delta):" in text
    assert "return (A_prev.T @ delta) / m" in text
    html = src._repr_html_()
    assert 'class="mlp-source-name">mlp_core.core.batched.weight_gradient<' in html
    assert "weight_gradient" in html and "<pre>" in html


def test_several_functions_in_order():
    both = show_source(batched.bias_gradient, batched.weight_gradient)
    text = repr(both)
    assert text.index("def bias_gradient") < text.index("def weight_gradient")
    assert both._repr_html_().count('class="mlp-source"') == 2


def test_every_source_line_is_a_block_that_keeps_its_indentation():
    """One ``mlp-line`` block per source line, whole HTML, its text the line itself and its
    indentation in ``--indent`` (book.css wraps a long line under itself with it)."""
    import html
    import inspect
    import re

    src = show_source(batched.backward)
    page = src._repr_html_()
    block = r'<span class="mlp-line" style="--indent: (\d+)ch">(.*?)</span>'
    blocks = re.findall(block + r'(?=<span class="mlp-line"|</pre>)', page)
    lines = inspect.getsource(batched.backward).rstrip("\n").split("\n")
    assert len(blocks) == len(lines) > 5
    for (indent, block), line in zip(blocks, lines):
        assert block.count("<span") == block.count("</span>")
        assert html.unescape(re.sub(r"<[^>]+>", "", block)).rstrip() == line.rstrip()
        assert int(indent) == len(line) - len(line.lstrip(" "))
    assert "\n" not in page.split("<pre>")[1].split("</pre>")[0]
