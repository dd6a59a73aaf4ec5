"""Show the library's own source in a notebook, so chapters never paste code.

``show_source(mlp_core.batched.weight_gradient)`` displays the function exactly as it is
in the package, highlighted; the book and the library cannot drift apart.
"""

from __future__ import annotations

import inspect


class Source:
    """The source of a function or class, displayed as highlighted code in Jupyter."""

    def __init__(self, obj):
        self.name = f"{obj.__module__}.{obj.__qualname__}"
        self.text = inspect.getsource(obj).rstrip() + "\n"

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.text, PythonLexer(), HtmlFormatter(nowrap=True))
        return (f'<div class="mlp-source"><div class="mlp-source-name">{self.name}</div>'
                f'<div class="highlight"><pre>{body}</pre></div></div>')

    def __repr__(self) -> str:
        return f"# {self.name}\n{self.text}"


def show_source(*objs):
    """One :class:`Source` per object (a tuple when several), for display in a cell."""
    sources = tuple(Source(o) for o in objs)
    return sources[0] if len(sources) == 1 else sources
