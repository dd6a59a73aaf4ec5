"""Show the library's own source in a notebook, so chapters never paste code.

``show_source(mlp_core.batched.weight_gradient)`` displays the function exactly as it is
in the package, highlighted; the book and the library cannot drift apart.

In HTML every source line is its own block (``mlp-line``) that carries its indentation,
so that a line longer than the page wraps under itself, indented one step further (the
book's ``book.css``), instead of making the reader scroll sideways.
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
        # Pygments closes its spans at every line end, so each line is whole HTML.
        lines = body.rstrip("\n").split("\n")
        plain = self.text.rstrip("\n").split("\n")
        body = "".join(
            f'<span class="mlp-line" style="--indent: {len(t) - len(t.lstrip(" "))}ch">'
            f"{h or ' '}</span>"
            for h, t in zip(lines, plain, strict=True)
        )
        return (
            f'<div class="mlp-source"><div class="mlp-source-name">{self.name}</div>'
            f'<div class="highlight"><pre>{body}</pre></div></div>'
        )

    def __repr__(self) -> str:
        return f"# {self.name}\n{self.text}"


class Sources:
    """Several :class:`Source` blocks displayed one after the other."""

    def __init__(self, objs):
        self.sources = [Source(o) for o in objs]

    def _repr_html_(self) -> str:
        return "\n".join(s._repr_html_() for s in self.sources)

    def __repr__(self) -> str:
        return "\n".join(repr(s) for s in self.sources)


def show_source(*objs):
    """The highlighted source of one or more functions or classes, for display in a cell."""
    return Source(objs[0]) if len(objs) == 1 else Sources(objs)
