"""Small HTML builders for self-contained pages: escaping, data URIs, tables, one stylesheet.

Everything that came from data (file names, texts, class names, recipe values)
goes through `escape`; images and audio are embedded as `data:` URIs, so a page
has no external resources and can be mailed or archived as one file.

>>> table(["class", "f1"], [["<cat>", 0.5]])
'<table><thead><tr><th>class</th><th>f1</th></tr></thead><tbody><tr><td>&lt;cat&gt;</td><td class="num">0.5000</td></tr></tbody></table>'
>>> data_uri(b"GIF89a", "image/gif")
'data:image/gif;base64,R0lGODlh'
"""

import base64
import html

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; border: 1px solid #eee; }
img.thumb { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated; background: #eee; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
.note { color: #666; font-size: .9em; } .snippet { max-width: 640px; white-space: pre-wrap; }
"""


def escape(value) -> str:
    """`value` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def data_uri(content: bytes, mime: str) -> str:
    """`content` embedded as a `data:` URI (base64)."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def cell(value) -> str:
    """One `<td>`: numbers right-aligned (floats with 4 decimals), everything else escaped."""
    if isinstance(value, bool) or value is None:
        return f"<td>{escape('' if value is None else value)}</td>"
    if isinstance(value, float):
        return f'<td class="num">{value:.4f}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, Markup):
        return f"<td>{value}</td>"
    return f"<td>{escape(value)}</td>"


class Markup(str):
    """HTML built here (not data), which `cell` and `page` insert without escaping."""


def table(headers, rows) -> str:
    """An HTML table; `headers` are escaped, `rows` go through `cell`."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(png: bytes, alt: str, css_class: str = "plot", element_id: str | None = None) -> Markup:
    """An `<img>` with the PNG embedded."""
    id_attr = f' id="{escape(element_id)}"' if element_id else ""
    return Markup(f'<img{id_attr} class="{css_class}" alt="{escape(alt)}" src="{data_uri(png, "image/png")}">')


def section(title: str, *parts: str, element_id: str | None = None) -> str:
    id_attr = f' id="{escape(element_id)}"' if element_id else ""
    return f"<section{id_attr}><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def paragraph(text: str, css_class: str | None = None) -> str:
    class_attr = f' class="{css_class}"' if css_class else ""
    return f"<p{class_attr}>{escape(text)}</p>"


def page(title: str, body: str) -> str:
    """A complete HTML document with the stylesheet inlined."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
