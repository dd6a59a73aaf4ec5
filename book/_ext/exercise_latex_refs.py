"""Cross-chapter references to exercises in the PDF (Sphinx's LaTeX builder).

sphinx-exercise labels an exercise in LaTeX as ``exercise:<label>`` and rewrites the
references *within* a chapter to point there, but a ``{numref}`` from another page (the
teacher's guide links every exercise of the book) still points at Sphinx's own
``<docname>:<label>``, which the LaTeX output never defines: the PDF shows "??". This
post-transform, for LaTeX only, points those references at ``exercise:<label>`` too and
keeps the numbered text Sphinx computed ("Exercise 3.1"). The HTML build is untouched.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.addnodes import number_reference
from sphinx.transforms.post_transforms import SphinxPostTransform


class CrossDocumentExerciseReferences(SphinxPostTransform):
    """``\\hyperref[exercise:<label>]{Exercise N}`` for a numref to another page's exercise."""

    default_priority = 25  # after sphinx-exercise's own reference transforms (20-22)
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for node in list(self.document.findall(number_reference)):
            uri = node.get("refuri", "")
            label = uri.partition("#")[2]
            if node.get("refid") or label not in registry:
                continue
            latex = rf"\hyperref[exercise:{label}]{{{node.astext()}}}"
            node.replace_self(nodes.raw("", latex, format="latex"))


def setup(app):
    app.add_post_transform(CrossDocumentExerciseReferences)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
