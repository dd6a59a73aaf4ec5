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
