"""Dashboards stage: one look for every figure — colours, fonts and a compact plotly template.

A figure carries this small template instead of plotly's default one (which embeds some
10 kB of styling per figure), so pages stay light and every chart looks the same.
"""

from __future__ import annotations

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
TEXT = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
AXIS = "#9ca3af"

# Colourblind-friendly, distinct hues; products and outcomes keep a fixed colour everywhere.
COLORWAY = ("#2563eb", "#059669", "#7c3aed", "#d97706", "#0891b2", "#db2777", "#65a30d", "#475569")
PRODUCT_COLORS = {"voice": "#2563eb", "sms": "#059669", "mms": "#7c3aed"}
PRODUCT_ORDER = ("voice", "sms", "mms")
DIRECTION_COLORS = {"inbound": "#0891b2", "outbound": "#d97706"}
OTHER_COLOR = "#94a3b8"
GOOD = "#059669"
BAD = "#dc2626"
NEUTRAL = "#2563eb"
# Alert severities keep a colour each on every page.
SEVERITY_COLORS = {"critical": BAD, "warning": "#d97706", "info": "#0891b2"}
HEAT_SCALE = ((0.0, "#eff6ff"), (0.5, "#60a5fa"), (1.0, "#1e3a8a"))

FIGURE_HEIGHT = 380

# plotly's template JSON: every figure's layout carries it (see `dashboards.plot`).
TEMPLATE = {
    "layout": {
        "font": {"family": FONT, "size": 13, "color": TEXT},
        # The title sits top-left of the whole figure, so it does not move with the width of
        # the axis labels; figures with a legend put it on its own line below (`figures._finish`).
        "title": {
            "font": {"size": 16, "color": TEXT}, "x": 0, "xanchor": "left", "xref": "container",
            "y": 1, "yanchor": "top", "yref": "container", "pad": {"t": 16, "l": 16},
        },
        "colorway": list(COLORWAY),
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 64, "r": 24, "t": 72, "b": 48},
        "hoverlabel": {"font": {"family": FONT, "size": 12}, "align": "left"},
        "legend": {"orientation": "h", "font": {"size": 12}},
        "xaxis": {"gridcolor": GRID, "linecolor": AXIS, "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": GRID, "linecolor": AXIS, "zeroline": False, "automargin": True},
        "bargap": 0.25,
    }
}

# Plotly config of every figure: no logo, no cloud links, PNG export kept for reports.
CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def product_color(product: str, index: int) -> str:
    """A product and its position -> its fixed colour (or the palette's next one)."""
    return PRODUCT_COLORS.get(product, COLORWAY[index % len(COLORWAY)])


def severity_color(severity: str) -> str:
    """An alert severity -> its colour (an unknown one: the muted grey)."""
    return SEVERITY_COLORS.get(severity, OTHER_COLOR)


def direction_color(direction: str, index: int) -> str:
    """A direction and its position -> its fixed colour (or the palette's next one)."""
    return DIRECTION_COLORS.get(direction, COLORWAY[(index + 3) % len(COLORWAY)])
