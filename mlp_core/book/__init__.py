"""The book's helpers (the ``book`` extra: matplotlib, ipywidgets).

``diagrams``: shape diagrams drawn to scale from real arrays; ``plots``: learning curves
and Part III figures; ``explorers``: figures with controls, one computation with three
faces (live in the HTML with no kernel, ipywidgets in JupyterLab, the default setting as
the PDF's figure); ``live``: the figure object that carries those faces; ``widgets``: the
ipywidgets side; ``show``: a function's source, displayed from the library itself.
Nothing here is imported by ``import mlp_core``.
"""
