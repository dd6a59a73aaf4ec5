"""The shapes of everything backprop touches, per layer, as data and as an HTML table."""

from __future__ import annotations

from ._style import h_symbol, shape_text


def shape_table(sizes, m) -> list[dict]:
    """Per layer l = 1..L, the shapes of everything backprop touches, one example and m.

    Keys (tuples of ints): ``W`` (h_{l-1}, h_l); one example, columns: ``b`` (h_l, 1),
    ``a_prev`` (h_{l-1}, 1), ``z`` and ``a`` (h_l, 1), ``delta`` (h_l, 1), ``dW_one``
    (h_{l-1}, h_l) = a^{l-1}(δ^l)^T, ``db_one`` (h_l, 1) = δ^l; m examples, rows:
    ``b_batch`` (h_l,) broadcast over rows, ``A_prev`` (m, h_{l-1}), ``Z`` and ``A``
    (m, h_l), ``Delta`` (m, h_l), ``dW`` (h_{l-1}, h_l), ``db`` (h_l,). Plus ``l``.
    """
    sizes = tuple(int(h) for h in sizes)
    m = int(m)
    rows = []
    for l in range(1, len(sizes)):
        hp, hl = sizes[l - 1], sizes[l]
        rows.append(
            {
                "l": l,
                "W": (hp, hl),
                "a_prev": (hp, 1),
                "b": (hl, 1),
                "z": (hl, 1),
                "a": (hl, 1),
                "delta": (hl, 1),
                "dW_one": (hp, hl),
                "db_one": (hl, 1),
                "A_prev": (m, hp),
                "b_batch": (hl,),
                "Z": (m, hl),
                "A": (m, hl),
                "Delta": (m, hl),
                "dW": (hp, hl),
                "db": (hl,),
            }
        )
    return rows


def shape_table_html(sizes, m) -> str:
    """:func:`shape_table` as an HTML table: one example (columns) beside m examples (rows)."""
    sizes = tuple(int(h) for h in sizes)
    L = len(sizes) - 1
    tab = shape_table(sizes, m)

    def hs(l):
        return {"n": "n", "C": "C"}.get(h_symbol(l, L), f"h<sub>{l}</sub>")

    th = 'style="padding:2px 6px;border-bottom:1px solid #888;white-space:nowrap;"'
    td = 'style="padding:2px 6px;text-align:center;font-family:monospace;white-space:nowrap;"'
    one = (
        "z<sup>l</sup>, a<sup>l</sup>",
        "δ<sup>l</sup>",
        "∂L/∂W<sup>l</sup>",
        "∂L/∂b<sup>l</sup>",
    )
    bat = (
        "Z<sup>l</sup>, A<sup>l</sup>",
        "Δ<sup>l</sup>",
        "∂J/∂W<sup>l</sup>",
        "∂J/∂b<sup>l</sup>",
    )
    # a narrow page scrolls the table sideways rather than wrapping a shape over lines
    out = [
        '<div class="mlp-shape-table-wrap" style="overflow-x:auto;max-width:100%;">',
        '<table class="mlp-shape-table" style="border-collapse:collapse;font-size:85%;">',
        f"<caption>Shapes for h = {shape_text(sizes)}, m = {int(m)}</caption>",
        "<thead><tr>"
        f'<th {th} rowspan="2">layer l</th><th {th} rowspan="2">W<sup>l</sup></th>'
        f'<th {th} colspan="5">one example (columns)</th>'
        f'<th {th} colspan="5">m examples (rows)</th></tr><tr>'
        f"<th {th}>b<sup>l</sup></th>"
        + "".join(f"<th {th}>{c}</th>" for c in one)
        + f"<th {th}>b<sup>l</sup></th>"
        + "".join(f"<th {th}>{c}</th>" for c in bat)
        + "</tr></thead><tbody>",
        f"<tr><td {td}>0 (input)</td><td {td}>–</td>"
        f'<td {td} colspan="5">x: (n, 1) = ({sizes[0]}, 1)</td>'
        f'<td {td} colspan="5">X = A<sup>0</sup>: (m, n) = ({int(m)}, {sizes[0]})</td>'
        "</tr>",
    ]
    for r in tab:
        l = r["l"]
        cells = [
            f"{l}",
            f"({hs(l - 1)}, {hs(l)})<br>= {shape_text(r['W'])}",
            shape_text(r["b"]),
            shape_text(r["z"]),
            shape_text(r["delta"]),
            shape_text(r["dW_one"]),
            shape_text(r["db_one"]),
            f"{shape_text(r['b_batch'])} broadcast",
            shape_text(r["Z"]),
            shape_text(r["Delta"]),
            shape_text(r["dW"]),
            shape_text(r["db"]),
        ]
        out.append("<tr>" + "".join(f"<td {td}>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)
