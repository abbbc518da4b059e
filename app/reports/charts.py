"""Charts as server-side SVG, the same markup on screen and in the PDF.

pygal draws them; pygal styles its SVG with a ``<style>`` sheet and classes, which our Content
Security Policy (``style-src 'self'``: no inline style) would refuse inside an HTML page. So each
chart is rewritten once, here, into plain presentation attributes (``fill="#0072b2"``): the CSS
rules pygal emitted are matched against the SVG tree with cssselect2 and their declarations set
as attributes; then every ``<style>``, ``<script>`` and ``style=`` is removed. What remains is
inert markup that can be inlined into the page and that WeasyPrint draws the same way.

Accessibility: the SVG is ``role="img"`` labelled by its own ``<title>`` and ``<desc>`` (a text
alternative); the page shows the same numbers in a table beside it. pygal's per-value tooltips
(``<desc>``/``<title>`` of each point) are dropped: without script they only add noise.

Lean for the PDF: every drawn element costs WeasyPrint time (a text is a Pango layout), so the
value axis has at most ``MAX_SCALE`` graduations, and the rewrite drops what pygal only needs for
its stylesheet and script (classes, ids, attribute-less groups). The PDF embeds the same SVG as an
image (``data_uri``): parsed by WeasyPrint's SVG renderer alone, not added to the HTML tree that
its CSS cascade and layout walk.

Charts receive rows that SQL already aggregated and lay them out; they compute nothing.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache

import cssselect2
import pygal
import tinycss2
from markupsafe import Markup, escape
from pygal.style import Style

SVG_NS = "http://www.w3.org/2000/svg"
_SVG = f"{{{SVG_NS}}}"

#: CSS properties that SVG also accepts as presentation attributes (the ones pygal's sheets use).
PRESENTATION_ATTRIBUTES = frozenset({
    "fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray", "stroke-linecap",
    "stroke-linejoin", "opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
    "dominant-baseline", "display", "visibility"})
#: Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in greyscale print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#999999", "#882255", "#44AA99", "#117733", "#332288", "#AA4499", "#DDCC77")
BOTTOM_ROOM = 24  # px added below pygal's drawing (see inline_presentation_attributes)
DASHES = ("none", "8,4", "2,3", "12,4,2,4")
MAX_SCALE = 6  # value-axis graduations at most (pygal's default, 16, draws up to 16 labelled guides)
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
_STYLE_OPTIONS = dict(
    background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#000000",
    foreground_subtle="#595959", opacity="1", opacity_hover="1", transition="0s", colors=PALETTE,
    font_family=FONT, label_font_family=FONT, major_label_font_family=FONT, title_font_family=FONT,
    legend_font_family=FONT, value_font_family=FONT, tooltip_font_family=FONT, no_data_font_family=FONT,
    title_font_size=15, label_font_size=11, major_label_font_size=11, legend_font_size=12)
_STYLE = Style(**_STYLE_OPTIONS)
_LINE_STYLE = Style(**_STYLE_OPTIONS, stroke_width="2.5", stroke_width_hover="2.5")
_COMMON = {"js": [], "disable_xml_declaration": True, "style": _STYLE, "width": 760, "height": 340,
           "legend_at_bottom": True, "legend_at_bottom_columns": 3, "truncate_legend": -1,
           "print_values": False, "margin": 12, "pretty_print": False, "no_data_text": "-",
           "max_scale": MAX_SCALE}
_UUID = re.compile(r"chart-[0-9a-f-]{36}")


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    description: str
    svg: Markup


def line_chart(slug: str, title: str, description: str, x_labels: list[str],
               series: list[tuple[str, list[int | float | None]]], *, y_title: str = "") -> Chart:
    """A trend chart: one line per series over ``x_labels``."""
    # No dots and a label every few weeks: each drawn element costs WeasyPrint time in the PDF.
    # Series differ by dash pattern as well as colour (readable without colour vision, in grey print).
    chart = pygal.Line(**{**_COMMON, "style": _LINE_STYLE}, x_label_rotation=35, show_dots=False, fill=False,
                       y_title=y_title, include_x_axis=True, truncate_label=-1, show_minor_x_labels=False,
                       x_labels_major_every=max(1, round(len(x_labels) / 9)))
    chart.x_labels = x_labels
    for index, (name, values) in enumerate(series):
        chart.add(name, values, stroke_style={"dasharray": DASHES[index % len(DASHES)]})
    return Chart(slug, title, description, _finish(chart, slug, title, description))


def stacked_bar_chart(slug: str, title: str, description: str, x_labels: list[str],
                      series: list[tuple[str, list[int | float | None]]], *, y_title: str = "") -> Chart:
    """Stacked bars: one horizontal bar per label, one coloured part per series."""
    # Horizontal: track names are long, and read best as row labels; the height follows the rows.
    legend_rows = -(-len(series) // 2)
    height = 110 + 32 * max(len(x_labels), 1) + 20 * legend_rows
    chart = pygal.HorizontalStackedBar(**{**_COMMON, "height": height, "legend_at_bottom_columns": 2},
                                       x_title=y_title, truncate_label=-1)
    # pygal draws the first label at the bottom: reversed, the bars read top-down like the table.
    chart.x_labels = list(reversed(x_labels))
    for name, values in series:
        chart.add(name, list(reversed(values)))
    return Chart(slug, title, description, _finish(chart, slug, title, description))


def _finish(chart, slug: str, title: str, description: str) -> Markup:
    # pygal's element tree, not its text: serialising it only for us to parse it back cost a
    # third of the chart's time.
    tree = chart.render_tree()
    # Safe to mark: ElementTree serialised every text and attribute (labels included) escaped.
    return Markup(inline_presentation_attributes(tree, slug=slug, title=title, description=description))  # noqa: S704


# -- the CSS-to-attributes rewrite ------------------------------------------------------------------

@lru_cache(maxsize=32)
def _matcher(css: str) -> cssselect2.Matcher:
    """A matcher for pygal's sheet; pygal's sheets differ only by the chart id, which we replace
    by a constant first, so this is built once per chart type and palette."""
    matcher = cssselect2.Matcher()
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type != "qualified-rule":
            continue
        declarations = [(d.lower_name, tinycss2.serialize(d.value).strip())
                        for d in tinycss2.parse_declaration_list(rule.content, skip_comments=True,
                                                                 skip_whitespace=True)
                        if d.type == "declaration" and d.lower_name in PRESENTATION_ATTRIBUTES]
        if not declarations:
            continue
        try:
            selectors = cssselect2.compile_selector_list(rule.prelude)
        except cssselect2.SelectorError:  # pseudo-classes such as :hover: no static equivalent
            continue
        for selector in selectors:
            if selector.pseudo_element is None:
                matcher.add_selector(selector, tuple(declarations))
    return matcher


@lru_cache(maxsize=32)
def _declarations(css: str) -> dict[tuple, tuple]:
    """Declarations found per element signature, for pygal's sheet ``css`` (see below)."""
    return {}


def inline_presentation_attributes(svg: str | ET.Element, *, slug: str, title: str, description: str) -> str:
    """Rewrite an SVG styled by a ``<style>`` sheet (text, or pygal's element tree, which is
    changed in place) into one styled by presentation attributes only, with an accessible name
    and description. Raises ValueError on anything but SVG."""
    root = ET.fromstring(svg) if isinstance(svg, str) else svg  # noqa: S314 (our own renderer's output)
    for node in root.iter():  # parsed text has namespaced tags, pygal's tree plain ones: plain names
        if isinstance(node.tag, str) and node.tag.startswith(_SVG):
            node.tag = node.tag[len(_SVG):]
    if root.tag != "svg":
        raise ValueError("not an SVG document")
    if _UUID.fullmatch(root.get("id") or ""):
        root.set("id", "chart")  # the sheet's rules start with "#chart-<uuid>": one matcher per kind
    css = _UUID.sub("chart", "".join(node.text or "" for node in root.iter("style")))
    # Drop what must not or need not stay: scripts, sheets, per-point tooltips, ids that would
    # repeat across the charts of one page.
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in ("style", "script", "desc", "title"):
                parent.remove(child)
            elif child.tag is ET.Comment or not isinstance(child.tag, str):
                parent.remove(child)
    matcher, known = _matcher(css), _declarations(css)
    signatures: dict[int, tuple] = {}
    wrapper = cssselect2.ElementWrapper.from_xml_root(root)
    for element in wrapper.iter_subtree():
        node = element.etree_element
        # pygal's sheet selects by tag, id, class, attribute presence and ancestry (no sibling
        # selectors): elements alike in all of these get the same declarations, matched once.
        parent = element.parent
        signature = (signatures[id(parent.etree_element)] if parent is not None else None,
                     node.tag, node.get("id"), node.get("class"), tuple(sorted(node.attrib)))
        signatures[id(node)] = signature
        found = known.get(signature)
        if found is None:
            matches = sorted(matcher.match(element), key=lambda m: (m[0], m[1]))  # specificity, order
            found = known[signature] = tuple(item for *_rank, declarations in matches for item in declarations)
        for name, value in found:  # in cascade order: the last one wins
            node.set(name, value)
        inline = node.attrib.pop("style", None)
        if inline:  # an inline style outranks the sheet: it becomes attributes too, last
            for declaration in tinycss2.parse_declaration_list(inline, skip_comments=True, skip_whitespace=True):
                if declaration.type == "declaration" and declaration.lower_name in PRESENTATION_ATTRIBUTES:
                    node.set(declaration.lower_name, tinycss2.serialize(declaration.value).strip())
    for node in root.iter():  # after matching: selectors read these on ancestors
        if node is not root:
            node.attrib.pop("id", None)
        node.attrib.pop("class", None)  # only pygal's sheet and script used them
    _unwrap_bare_groups(root)
    # pygal's bottom legend can overrun its own box by a row: give the picture room below.
    x, y, width, height = (float(v) for v in root.get("viewBox").split())
    view_box = f"{x:g} {y:g} {width:g} {height + BOTTOM_ROOM:g}"
    root.attrib.clear()
    root.attrib.update({"xmlns": SVG_NS, "viewBox": view_box, "id": f"chart-{slug}", "role": "img",
                        "aria-labelledby": f"chart-{slug}-title chart-{slug}-desc",
                        "preserveAspectRatio": "xMidYMid meet", "width": "100%"})
    title_node = ET.Element("title", {"id": f"chart-{slug}-title"})
    title_node.text = title
    desc_node = ET.Element("desc", {"id": f"chart-{slug}-desc"})
    desc_node.text = description
    root.insert(0, desc_node)
    root.insert(0, title_node)
    # Plain names and an explicit xmlns instead of ET.register_namespace, whose map is global
    # (other libraries change it, and the output would turn into ns0:svg).
    for node in root.iter():
        for name in [n for n in node.attrib if n.startswith("{")]:
            node.attrib.pop(name)  # xlink and other foreign attributes: nothing we draw needs them
    out = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    if "<style" in out or "<script" in out or " style=" in out:  # belt and braces
        raise ValueError("chart still carries inline style or script")
    return out


def _unwrap_bare_groups(root: ET.Element) -> None:
    """Replace each ``<g>`` without attributes by its children: it changes nothing drawn (no
    transform, no inherited paint), and each element costs the PDF renderer a graphics state."""
    for parent in list(root.iter()):
        if not any(child.tag == "g" and not child.attrib for child in parent):
            continue
        children: list[ET.Element] = []
        for child in list(parent):
            pending = [child]
            while pending:
                node = pending.pop(0)
                if node.tag == "g" and not node.attrib:
                    pending[:0] = list(node)
                else:
                    children.append(node)
        parent[:] = children


def data_uri(chart: Chart) -> str:
    """The chart as a ``data:`` URL, for an ``<img>`` in the PDF (see the module docstring)."""
    return "data:image/svg+xml;base64," + base64.b64encode(str(chart.svg).encode("utf-8")).decode("ascii")


def alt_text(chart: Chart) -> str:
    return str(escape(f"{chart.title}. {chart.description}"))
