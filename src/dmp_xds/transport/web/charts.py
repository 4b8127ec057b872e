"""The establishment dashboard's charts, rendered on the server as SVG by pygal.

What the page gets is inert, self-contained markup: no script at all (pygal's own config script
is taken out, `js=[]` loads none), no XML declaration (the SVG goes inline in the HTML), no
comment with the day's date and a fixed id, so that the same figures give the same bytes. The
SVG names itself for assistive technologies (`role="img"`, its `<title>` and `<desc>`); the page
puts the same figures beside it as a table. Colours are dark on white, above the 4.5:1 contrast
of WCAG 2.1 AA for text and 3:1 for the bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pygal  # type: ignore[import-untyped]
from lxml import etree
from pygal.style import Style  # type: ignore[import-untyped]

SVG_NS = "http://www.w3.org/2000/svg"
# Marianne blue (#000091: 15.9:1 on white) and a dark red (#b60000: 7.2:1 on white).
PUBLICATION_COLOUR = "#000091"
REFUSAL_COLOUR = "#b60000"
TEXT_COLOUR = "#1e1e1e"  # 16.4:1 on white

_STYLE_COMMON: dict[str, Any] = {
    "background": "#ffffff",
    "plot_background": "#ffffff",
    "foreground": TEXT_COLOUR,
    "foreground_strong": TEXT_COLOUR,
    "foreground_subtle": "#6a6a6a",  # the grid only
    "opacity": "1",
    "opacity_hover": "1",
    "transition": "none",
    "font_family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    "title_font_size": 18,
    "label_font_size": 14,
    "major_label_font_size": 14,
    "value_font_size": 14,
    "value_label_font_size": 14,
}


def _config(colour: str) -> dict[str, Any]:
    return {
        "js": [],
        "disable_xml_declaration": True,
        "style": Style(colors=(colour,), **_STYLE_COMMON),
        "show_legend": False,
        "print_values": True,
        # Above (beside) the bar, in the text colour on white: inside a dark bar it would not be
        # read, and a short bar has no room for it.
        "print_values_position": "top",
        "print_zeroes": True,
        "no_data_text": "Aucune donnée",
        "width": 800,
        "height": 420,
        "margin": 16,
        "value_formatter": lambda value: f"{value:.0f}",
    }


def _accessible(svg: etree._Element, chart_id: str, title: str, description: str) -> etree._Element:
    """The chart without script or comments, named by its title and description."""
    for script in svg.iter(f"{{{SVG_NS}}}script", "script"):
        script.getparent().remove(script)
    for comment in svg.xpath("//comment()"):
        comment.getparent().remove(comment)
    title_element = next(iter(svg.iter(f"{{{SVG_NS}}}title", "title")), None)
    if title_element is None:
        title_element = etree.SubElement(svg, f"{{{SVG_NS}}}title")
        svg.insert(0, title_element)
    title_element.text = title
    title_element.set("id", f"{chart_id}-title")
    desc = etree.Element(f"{{{SVG_NS}}}desc", id=f"{chart_id}-desc")
    desc.text = description
    title_element.addnext(desc)
    svg.set("role", "img")
    svg.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
    return svg


def counts_axis(counts: Sequence[int], most: int = 10) -> list[int]:
    """Whole numbers for the axis of counts, at most `most` + 1 of them: pygal's own ticks
    of a small count are fractions, printed rounded (0, 0, 1, 1...)."""
    top = max([1, *counts])
    step = max(1, -(-top // most))
    return list(range(0, top + step, step))


def _render(chart: Any, chart_id: str, title: str, description: str) -> str:
    chart.uuid = chart_id  # pygal's id is random: fixed, the output is the same for the same figures
    chart.add_xml_filter(lambda svg: _accessible(svg, chart_id, title, description))
    return str(etree.tostring(chart.render_tree(), encoding="unicode"))


def publications_chart(months: Sequence[tuple[str, int]], chart_id: str = "publications") -> str:
    """Documents published month by month (vertical bars): (month's label, count), oldest first."""
    chart = pygal.Bar(**_config(PUBLICATION_COLOUR))
    title = "Documents publiés par mois"
    chart.title = title
    chart.x_title = "Mois"
    chart.y_title = "Documents publiés"
    chart.x_labels = [label for label, _ in months]
    chart.x_label_rotation = 30
    chart.y_labels = counts_axis([count for _, count in months])
    chart.add("Documents publiés", [count for _, count in months])
    description = "; ".join(f"{label} : {count}" for label, count in months) or "aucune publication"
    return _render(chart, chart_id, title, f"Nombre de documents publiés chaque mois. {description}.")


def refusals_chart(codes: Sequence[tuple[str, int]], chart_id: str = "refusals") -> str:
    """Refused submissions per error code (horizontal bars): (code, count), most frequent first."""
    chart = pygal.HorizontalBar(**_config(REFUSAL_COLOUR))
    title = "Envois refusés par code d'erreur"
    chart.title = title
    chart.x_labels = [code for code, _ in codes]
    chart.y_labels = counts_axis([count for _, count in codes])
    chart.add("Envois refusés", [count for _, count in codes])
    description = "; ".join(f"{code} : {count}" for code, count in codes) or "aucun refus"
    return _render(chart, chart_id, title, f"Nombre d'envois refusés pour chaque code d'erreur. {description}.")
