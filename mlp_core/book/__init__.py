"""The book's helpers (the ``book`` extra: matplotlib, ipywidgets).

``diagrams``: shape diagrams drawn to scale from real arrays; ``plots``: learning curves
and Part III figures; ``widgets``: interactive figures with static twins; ``show``: a
function's source, displayed from the library itself. Nothing here is imported by
``import mlp_core``.
"""
