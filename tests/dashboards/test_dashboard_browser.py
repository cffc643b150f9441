"""Every page opened in headless Chromium from file://, offline: no console error, every figure drawn.

One browser for the whole module (the only module that starts one); the pages of a site load
side by side in tabs, then each page's test checks what its visit recorded. With
CDR_SCREENSHOTS_DIR set, a full-page screenshot of each goes there (they take most of the
module's time, so only when someone will look at them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import plotly.offline
import polars as pl
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from dashboards import figures
from dashboards.figures import NO_ALERTS, NO_DATA
from dashboards.pages import PAGES
from dashboards.render import INDEX, PLOTLY_JS, figure_html, render_site
from pipelines.alerts import ALERT_COLUMNS
from tests.fixtures.alerts import alert
from tests.dashboards.dashboard_fixtures import (
    HOSTILE_CARRIER,
    HOSTILE_CONNECTION,
    HOSTILE_PROFILE,
    HOSTILE_TAG,
    LARGE,
    NOW,
    SMALL,
    SYNCED_AT,
    build_warehouse,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SITES = ("small", "empty", "large")
FIGURES = {page.filename: len(page.figures) for page in PAGES} | {INDEX: 0}
RENDER_TIMEOUT_MS = 30_000
# Names with markup and the figure that must show each one as typed.
HOSTILE_LABELS = {
    "finance.html": {
        "fig-cost-by-connection": HOSTILE_CONNECTION,
        "fig-cost-by-messaging-profile": HOSTILE_PROFILE,
        "fig-cost-by-tag": HOSTILE_TAG,
    },
    "messaging.html": {"fig-delivery-by-carrier": HOSTILE_CARRIER},
}
# Alert messages shown on hover, as typed: per page and figure, a text to find the point by in its
# (encoded) hover data, and the text its hover box must show.
HOSTILE_HOVERS = {
    "overview.html": {"fig-daily-volume": ("bold", HOSTILE_CARRIER), "fig-daily-cost": ("880.00", "reached 880.00")},
    "voice-quality.html": {"fig-call-quality-daily": ("alert(1)", HOSTILE_CONNECTION)},
    "alerts.html": {"fig-alerts-timeline": ("alert(1)", HOSTILE_CONNECTION)},
}
EMPTY_MESSAGES = (NO_DATA, NO_ALERTS)
# A phone's width, and the figures over days drawn there, whose tick labels must not run into each other.
PHONE_WIDTH = 390
TRENDS = {
    "overview.html": ("fig-daily-volume", "fig-daily-cost"),
    "voice-quality.html": ("fig-call-quality-daily", "fig-peak-concurrency"),
    "reconciliation.html": ("fig-reconciliation-differences",),
}
# Pairs of tick labels of one figure whose drawn boxes (turned as the labels are) overlap by more than a
# pixel: a separating axis test on each box's four corners on the screen.
OVERLAPPING_TICKS = """ids => {
    const corners = t => {
        const b = t.getBBox(), m = t.getScreenCTM();
        return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
            .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
    };
    const apart = (p, q) => [p, q].some(poly => poly.some(([x1, y1], i) => {
        const [x2, y2] = poly[(i + 1) % 4];
        const n = [y1 - y2, x2 - x1].map(v => v / (Math.hypot(x2 - x1, y2 - y1) || 1));
        const [a, b] = [p, q].map(r => r.map(([x, y]) => x * n[0] + y * n[1]));
        return Math.min(Math.max(...a), Math.max(...b)) - Math.max(Math.min(...a), Math.min(...b)) < 1;
    }));
    const found = {};
    for (const id of ids) {
        const labels = [...document.querySelectorAll(`#${id} g[class$="axislayer-above"] text`)]
            .filter(t => t.textContent.trim() && getComputedStyle(t).display !== 'none')
            .map(t => [t.textContent, corners(t)]);
        found[id] = labels.flatMap(([a, p], i) => labels.slice(i + 1).filter(([, q]) => !apart(p, q)).map(([b]) => `${a} | ${b}`));
    }
    return found;
}"""
# The rankings, whose bars must have most of a phone's width and whose names must not run into a bar.
RANKINGS = {
    "finance.html": ("fig-cost-by-country", "fig-cost-by-connection", "fig-cost-by-messaging-profile", "fig-cost-by-tag"),
    "messaging.html": ("fig-delivery-by-carrier", "fig-delivery-by-country", "fig-failure-reasons"),
    "voice-quality.html": ("fig-hangup-causes",),
}
RANKING_ROOM_PERCENT = 60
# Per ranking: its widest bar as a share of the figure's width (%), and the names (as tick labels or text)
# whose drawn boxes overlap a bar's by more than a pixel.
RANKING_ROOM = """ids => Object.fromEntries(ids.map(id => {
    const figure = document.getElementById(id), box = e => e.getBoundingClientRect();
    const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
        && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
    const bars = [...figure.querySelectorAll('.barlayer .point path')].map(box).filter(b => b.width > 0);
    const names = [...figure.querySelectorAll('.textpoint text, g[class$="axislayer-above"] .ytick text')]
        .filter(t => t.textContent.trim()).map(t => [t.textContent, box(t)]);
    return [id, {
        widest: Math.round(100 * Math.max(...bars.map(b => b.width)) / box(figure).width),
        overlapping: names.filter(([, name]) => bars.some(bar => hit(name, bar))).map(([text]) => text),
    }];
}))"""


# Per figure, how its title, legend and menu clash (a title running off the figure; a legend or menu running
# into the title, the plot, a panel's title or each other, by more than a pixel; the figure grown past its
# box), and whether fit.js changed it.
HEADER_CLASHES = """() => Object.fromEntries([...document.querySelectorAll('.plotly-graph-div')].map(figure => {
    const outer = figure.getBoundingClientRect();
    const box = e => { const b = e && e.getBoundingClientRect(); return b && b.width && b.height ? b : null; };
    const hit = (a, b) => Boolean(a && b && Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
        && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1);
    const title = box(figure.querySelector('.g-gtitle'));
    const legend = box(figure.querySelector('.legend'));
    const menu = box(figure.querySelector('.updatemenu-header-group'));
    const size = figure._fullLayout._size;
    const plot = {left: outer.left + size.l, right: outer.left + size.l + size.w,
                  top: outer.top + size.t, bottom: outer.top + size.t + size.h};
    const notes = [...figure.querySelectorAll('.annotation')].map(box).filter(Boolean);
    const found = [];
    if (title && (title.left < outer.left || title.right > outer.right)) found.push('the title runs off the figure');
    if (figure._fullLayout.height > outer.height + 1) found.push('the figure is taller than its box');
    for (const [name, item] of [['legend', legend], ['menu', menu]]) {
        if (hit(item, title)) found.push(`the ${name} runs into the title`);
        if (hit(item, plot)) found.push(`the ${name} runs into the plot`);
        if (notes.some(note => hit(item, note))) found.push(`the ${name} runs into a panel title`);
    }
    if (hit(legend, menu)) found.push('the legend runs into the menu');
    return [figure.id, {clashes: found, fitted: Boolean(figure._fit && figure._fit.changed)}];
}))"""


@dataclass
class Visit:
    """What one page load did and showed: browser problems, dialogs, requests leaving file://,
    the figures drawn, the labels of figures with hostile names, the elements, a screenshot."""

    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    drawn: list[dict[str, object]] = field(default_factory=list)
    labels: dict[str, list[str]] = field(default_factory=dict)
    hovers: dict[str, str] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)
    header: dict[str, dict[str, object]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def screenshot_dir() -> Path | None:
    """CDR_SCREENSHOTS_DIR, when set (read before any test clears it)."""
    extra = os.environ.get("CDR_SCREENSHOTS_DIR")
    if not extra:
        return None
    Path(extra).mkdir(parents=True, exist_ok=True)
    return Path(extra)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The site rendered from a small, an empty and a large warehouse."""
    found = {}
    for name in SITES:
        root = tmp_path_factory.mktemp(f"browser-{name}")
        shape = LARGE if name == "large" else SMALL
        warehouse = build_warehouse(root / "warehouse.duckdb", shape, empty=name == "empty")
        render_site(warehouse, root / "site", synced_at=SYNCED_AT, now=NOW)
        found[name] = root / "site"
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's chromium driven by playwright, with a fresh profile; stopped after the module."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
            offline=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def visits(browser, sites, screenshot_dir) -> dict[tuple[str, str], Visit]:
    """Every page of every site, visited once; a site's pages load side by side in their own tabs."""
    found = {}
    for site in SITES:
        opened = [(filename, *_start(browser, sites[site] / filename)) for filename in FIGURES]
        for filename, page, visit in opened:
            try:
                _inspect(page, visit, filename)
                if screenshot_dir is not None:
                    page.screenshot(path=screenshot_dir / f"{site}-{Path(filename).stem}.png", full_page=True)
            except PlaywrightError as exc:
                # One page that never finishes drawing fails its own test, not the others'.
                visit.problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            finally:
                page.close()
            found[(site, filename)] = visit
    return found


@pytest.fixture(scope="module")
def phone(browser, sites, screenshot_dir) -> dict[str, dict[str, object]]:
    """The small site's pages, each drawn at a phone's width -> per page, what each check found: its trends'
    overlapping tick labels, its rankings' room, its figures' clashing titles, legends and menus."""
    found = {}
    for filename in FIGURES:
        if not FIGURES[filename]:
            continue
        page, visit = _start(browser, sites["small"] / filename, width=PHONE_WIDTH)
        try:
            _inspect(page, visit, filename)
            found[filename] = {
                "ticks": page.evaluate(OVERLAPPING_TICKS, list(TRENDS.get(filename, ()))),
                "rankings": page.evaluate(RANKING_ROOM, list(RANKINGS.get(filename, ()))),
                "header": visit.header,
            }
            if screenshot_dir is not None:
                page.screenshot(path=screenshot_dir / f"small-{Path(filename).stem}-{PHONE_WIDTH}.png", full_page=True)
        finally:
            page.close()
        assert visit.problems == [], visit.problems
    return found


def _start(browser, path: Path, width: int | None = None) -> tuple[object, Visit]:
    """Start loading a file in a new tab, recording console errors, page errors, dialogs and network use."""
    visit = Visit()
    page = browser.new_page()
    page.on("console", lambda message: message.type == "error" and visit.problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: visit.problems.append(f"page error: {error}"))
    page.on("request", lambda request: request.url.startswith("file://") or visit.requests.append(request.url))
    page.on("requestfailed", lambda request: visit.problems.append(f"failed request: {request.url}"))

    def dismiss(dialog) -> None:
        visit.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    if width is not None:
        # Before the load: plotly sizes a figure to its container when it draws it.
        page.set_viewport_size({"width": width, "height": 900})
    page.goto(path.as_uri(), wait_until="commit")
    return page, visit


def _inspect(page, visit: Visit, filename: str) -> None:
    """Wait until the page has loaded and every figure div holds its SVG; record what it shows."""
    page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function(
        """n => {
            const divs = [...document.querySelectorAll('.plotly-graph-div')];
            // drawn, and fitted to the screen by fit.js (a page that lacks it fails the tests of what it fits)
            const fits = document.querySelector('script[src$="fit.js"]') !== null;
            return divs.length === n && divs.every(d => d.querySelector('svg.main-svg') && d._fullLayout
                && (!fits || (d._fit && !d._fitting)));
        }""",
        arg=FIGURES[filename],
        timeout=RENDER_TIMEOUT_MS,
    )
    visit.drawn = page.evaluate(
        """empties => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
            id: d.id,
            svgs: d.querySelectorAll('svg.main-svg').length,
            traces: d.data.length,
            empty: [...d.querySelectorAll('.annotation-text')].some(a => empties.includes(a.textContent)),
        }))""",
        list(EMPTY_MESSAGES),
    )
    for figure, (needle, _) in HOSTILE_HOVERS.get(filename, {}).items():
        visit.hovers[figure] = _hover(page, figure, needle)
    visit.labels = {
        figure: page.eval_on_selector_all(f"#{figure} svg text", "nodes => nodes.map(n => n.textContent)")
        for figure in HOSTILE_LABELS.get(filename, {})
    }
    visit.elements = page.evaluate("() => ({scripts: document.scripts.length, images: document.images.length})")
    visit.header = page.evaluate(HEADER_CLASHES)


def _hover(page, figure: str, needle: str) -> str:
    """Hover the first point of a figure whose hover data holds `needle` -> the lines its hover box shows."""
    found = page.evaluate(
        """([id, needle]) => {
            const d = document.getElementById(id);
            for (const [curve, trace] of d.data.entries()) {
                const point = (trace.customdata || []).findIndex(c => String(c).includes(needle));
                if (point >= 0) { Plotly.Fx.hover(d, [{curveNumber: curve, pointNumber: point}]); return true; }
            }
            return false;
        }""",
        [figure, needle],
    )
    if not found:
        return ""
    selector = f"#{figure} .hoverlayer tspan.line"
    page.wait_for_selector(selector, state="attached", timeout=RENDER_TIMEOUT_MS)
    return " ".join(page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)"))


@pytest.mark.slow
@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("filename", list(FIGURES))
def test_every_page_draws_every_figure_offline_without_errors(visits, site, filename):
    visit = visits[(site, filename)]
    assert visit.problems == [] and visit.dialogs == [] and visit.requests == []
    # plotly.js, one script per figure and fit.js: nothing from the data became an element.
    assert visit.elements == {"scripts": (2 + FIGURES[filename]) if FIGURES[filename] else 0, "images": 0}
    # On a wide screen every title, legend and menu has its room as drawn: fit.js changes nothing.
    assert visit.header == {figure["id"]: {"clashes": [], "fitted": False} for figure in visit.drawn}
    assert len(visit.drawn) == FIGURES[filename]
    for figure in visit.drawn:
        assert figure["svgs"] >= 1, figure
        if site == "empty":
            assert figure["traces"] == 0 and figure["empty"], figure
        else:
            assert figure["traces"] >= 1 and not figure["empty"], figure
    if site == "small":
        # Markup in names is shown as the very text typed, in the figure's own labels and hover boxes.
        for figure, hostile in HOSTILE_LABELS.get(filename, {}).items():
            assert hostile in visit.labels[figure], (figure, visit.labels[figure])
        for figure, (_, shown) in HOSTILE_HOVERS.get(filename, {}).items():
            assert " ".join(shown.split()) in " ".join(visit.hovers[figure].split()), (figure, visit.hovers[figure])


@pytest.mark.parametrize("filename", list(TRENDS))
def test_a_trends_tick_labels_never_run_into_each_other_on_a_phone(phone, filename):
    # plotly ticked the first of a month at the plot's left edge, its label over the value axis' 0
    assert phone[filename]["ticks"] == {figure: [] for figure in TRENDS[filename]}


@pytest.mark.parametrize("filename", list(RANKINGS))
def test_a_rankings_bars_have_the_width_of_a_phone_and_its_names_clear_of_them(phone, filename):
    # names beside the bars took half a phone's width, the longest bar a third of it
    for figure, room in phone[filename]["rankings"].items():
        assert room["widest"] >= RANKING_ROOM_PERCENT and room["overlapping"] == [], (figure, room)


@pytest.mark.parametrize("filename", [name for name, count in FIGURES.items() if count])
def test_every_title_legend_and_menu_has_its_room_on_a_phone(phone, filename):
    # long titles ran off the figure; a legend wrapping onto more lines ran into the top panel's title
    assert {figure: found["clashes"] for figure, found in phone[filename]["header"].items()} == {
        figure: [] for figure in phone[filename]["header"]
    }


# Per figure: its x tick labels and, for its bars, the widest one as a share of the plot's width (%).
X_TICKS_AND_BARS = """() => Object.fromEntries([...document.querySelectorAll('.plotly-graph-div')].map(figure => {
    const ticks = [...figure.querySelectorAll('g[class^="xaxislayer"] g[class$="tick"] text')]
        .filter(t => getComputedStyle(t).display !== 'none').map(t => t.textContent);
    const bars = [...figure.querySelectorAll('.barlayer .point path')].map(p => p.getBoundingClientRect().width);
    return [figure.id, {ticks, widest: Math.round(100 * Math.max(0, ...bars) / figure._fullLayout._size.w)}];
}))"""


def test_a_trend_of_one_day_and_a_lone_alert_are_ticked_by_day_not_in_fractions_of_a_second(browser, tmp_path):
    # plotly drew a lone bar a millisecond wide over an axis ticked '23:59:59.9996' (a first sync of one day,
    # one alert, one day whose totals differ from the API's)
    day = date(2026, 10, 30)
    costs = pl.DataFrame(
        [(day, product, "USD", 10, Decimal("1.5")) for product in ("voice", "sms")],
        schema={"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                "cost": pl.Decimal(38, 9)}, orient="row",
    )
    quality = pl.DataFrame(
        [(day, 10, 6, 0.6, 0.97, 0.1, 120.0)],
        schema={"day": pl.Date, "calls": pl.Int64, "answered_calls": pl.Int64, "asr": pl.Float64,
                "ner": pl.Float64, "short_call_share": pl.Float64, "acd_secs": pl.Float64}, orient="row",
    )
    differences = pl.DataFrame(
        [(day, "USD", "explained_by_quarantine", Decimal("-0.5"))],
        schema={"day": pl.Date, "currency": pl.String, "status": pl.String, "cost_difference": pl.Decimal(38, 9)},
        orient="row",
    )
    schema = {name: pl.Datetime("us", "UTC") if name.startswith("window_") else
              pl.Float64 if name in ("observed", "baseline", "threshold") else pl.String for name in ALERT_COLUMNS}
    alerts = pl.DataFrame([alert("a", datetime(2026, 10, 30, 14, tzinfo=UTC)).row()], schema=schema, orient="row")
    drawn = {
        "volume": figures.daily_volume(costs),
        "cost": figures.daily_cost(costs),
        "quality": figures.call_quality_daily(quality),
        "peak": figures.peak_concurrency(pl.DataFrame({"day": [day], "peak_concurrent_calls": [4]})),
        "differences": figures.reconciliation_differences(differences),
        "alerts": figures.alerts_timeline(alerts),
    }
    (tmp_path / PLOTLY_JS).write_text(plotly.offline.get_plotlyjs(), "utf-8")
    body = "".join(f'<div style="width:1200px">{figure_html(fig, key)}</div>' for key, fig in drawn.items())
    (tmp_path / "one-day.html").write_text(
        f'<!doctype html><html><head><script src="{PLOTLY_JS}"></script></head><body>{body}</body></html>', "utf-8"
    )
    page, visit = _start(browser, tmp_path / "one-day.html")
    try:
        page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_function(
            "n => [...document.querySelectorAll('.plotly-graph-div')].filter(d => d._fullLayout).length === n",
            arg=len(drawn), timeout=RENDER_TIMEOUT_MS,
        )
        found = page.evaluate(X_TICKS_AND_BARS)
    finally:
        page.close()
    assert visit.problems == [], visit.problems
    for key in ("volume", "cost", "quality", "peak", "differences"):
        assert found[f"fig-{key}"]["ticks"] == ["Oct 30, 2026"], (key, found[f"fig-{key}"])
        # the day's bar a bar's width, not the whole plot's nor a hair's
        assert 20 <= found[f"fig-{key}"]["widest"] <= 60, (key, found[f"fig-{key}"])
    assert not [tick for tick in found["fig-alerts"]["ticks"] if re.search(r"\d:\d\d:\d\d", tick)], found["fig-alerts"]
    assert "Oct 30, 2026" in " ".join(found["fig-alerts"]["ticks"]), found["fig-alerts"]
