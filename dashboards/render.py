"""Dashboards stage: `rpt_` tables -> a self-contained static site (HTML pages, one plotly.js).

`render_site` checks the output folder, reads every report table the pages need (all of them
checked before anything is written), draws the figures, and writes the pages beside one copy
of plotly.js, one stylesheet and one script fitting the figures to the screen (all or none:
`pipelines.reports.write_outputs`), so the site opens from file:// with no network. Figures are
embedded as plotly JSON (which escapes `<`, `>` and `/`), and every other text goes through
Jinja's autoescape.
"""

from __future__ import annotations

import tempfile
from contextlib import suppress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import plotly.io as pio
import plotly.offline
import polars as pl
from markupsafe import Markup

from dashboards import figures, theme
from dashboards.accounts import ACCOUNT, account_frames, account_period, accounts_of, combined_frames
from dashboards.formatting import format_day, format_instant
from dashboards.pages import ALERTS, PAGES, PERIOD, FigureSpec, Page, Source, TableSpec, TilesSpec, all_sources
from dashboards.warehouse import DashboardError, read_report, report_tables
from pipelines.accounts import SHOWN_ACCOUNTS, Accounts
from pipelines.alerts import open_from
from pipelines.dates import Window, parse_bound
from pipelines.errors import counted
from pipelines.reports import MonthCoverage, check_out_dir, write_outputs
from pipelines.reports import partial_months as held_partial_months
from pipelines.remote import warehouse_name
from pipelines.sql import connect_read_only
from pipelines.status import SITE_DIR, SITE_MARKER, Synced, site_marker, synced_at

PLOTLY_JS = "plotly.min.js"
STYLESHEET = "style.css"
# Fits each figure's title, legend and menu to the width it is drawn at (plotly's layouts are fixed).
FIT_JS = "fit.js"
INDEX = "index.html"
# Over several accounts, each account's pages are in <site>/accounts/<name>/.
ACCOUNTS_DIR = "accounts"


@dataclass(frozen=True, slots=True)
class SiteMeta:
    """What every page's footer (and the index) says about the data."""

    period: str
    synced: str
    generated: str
    calendar: str


def render_site(
    warehouse_path: Path,
    out_dir: Path,
    *,
    synced_at: Synced | datetime | None,
    now: datetime,
    pages: Sequence[Page] = PAGES,
    held: Mapping[str, Sequence[Window]] | None = None,
    unlisted: Mapping[str, Sequence[Window]] | None = None,
    listed: Sequence[str] = (),
) -> list[Path]:
    """A warehouse -> the dashboard site in out_dir (index first, then pages, assets and the marker `cdr status` reads).

    `synced_at`: how fresh the data is (`pipelines.status.synced_at`), or only the instant it is synced up to.
    `now`: the instant the pages judge the data at (which months are partial), as the build's alert rules;
    "Pages made" and the marker say when they were written, by the real clock, as the sync and build record theirs.
    `held`: the instants the lake holds per account (`pipelines.reports.lake_held`), which label the partial
    months as a finance statement refuses them; None for a warehouse alone (see `partial_months`).
    `unlisted`: the accounts an accounts file no longer lists (`pipelines.reports.unlisted_touched`): on the
    all-accounts pages a month one of them holds nothing of is judged without it, as the combined statement is.
    `listed`: the accounts the file lists (`pipelines.reports.listed_accounts`): on the all-accounts pages one
    never synced makes every month partial, as it does the combined statement.
    """
    # the warehouse lives in its data dir (or, for an object store's, in its local work folder)
    out = check_out_dir(out_dir, Path(warehouse_path).parent)
    every = load_frames(warehouse_path, all_sources(tuple(pages)), with_account=True)
    accounts = accounts_of(every)
    several = len(accounts) > 1
    frames = combined_frames(every) if several else account_frames(every, None)
    period, calendar = describe_period(frames[PERIOD])
    made = datetime.now(UTC)
    meta = SiteMeta(
        period=period, synced=synced_text(synced_at), generated=format_instant(made), calendar=calendar
    )
    environment = _environment()
    # One account: the site as it always was. Several: the all-accounts pages at the top, each account's
    # pages in accounts/<name>/, every page linking to the others' same page set.
    sets: list[tuple[str | None, str]] = [(None, "")]
    if several:
        sets += [(account, f"{ACCOUNTS_DIR}/{account}/") for account in accounts]
    # Each page is kept as bytes once rendered: every page's text held until all were rendered, then encoded,
    # held a reseller's thousands of pages twice over.
    contents: dict[Path, bytes] = {}
    switchers = Switchers(environment, accounts) if several else None
    for account, folder in sets:
        root = "../" * folder.count("/")
        scope = "" if not several else ("all accounts" if account is None else f"account {account}")
        combined = several and account is None
        # The all-accounts pages draw only the figures that combine (the others send to an account's page).
        nav = [
            {"slug": page.slug, "title": page.title, "filename": page.filename, "summary": page.summary,
             "figure_count": sum(1 for figure in page.figures if figure.all_accounts or not combined)}
            for page in pages
        ]
        shown = frames if account is None else account_frames(every, account)
        own_meta = meta if account is None else replace(meta, period=describe_period(account_period(shown))[0])
        common = {
            "nav": nav, "meta": own_meta, "stylesheet": root + STYLESHEET, "plotly_js": root + PLOTLY_JS,
            "fit_js": root + FIT_JS, "accounts_folded": len(accounts) > SHOWN_ACCOUNTS, "scope": scope,
        }
        own = None if held is None else {name: held.get(name, ()) for name in ([account] if account else accounts)}
        partial = period_partial_months(
            shown[PERIOD], held=own, now=now, unlisted=None if account else unlisted,
            listed=() if account or own is None else listed,
        )
        cut = cut_day(shown[PERIOD], synced_at.up_to if isinstance(synced_at, Synced) else synced_at)
        contents[out / folder / INDEX] = environment.get_template("index.html").render(
            title="Overview of pages", current=None,
            switcher=switchers.of(account, root, INDEX) if switchers else None,
            **common,
        ).encode("utf-8")
        for page in pages:
            contents[out / folder / page.filename] = environment.get_template("page.html").render(
                title=page.title, current=page.slug, page=page,
                switcher=switchers.of(account, root, page.filename) if switchers else None,
                blocks=render_blocks(page, shown, combined=combined, partial=partial, cut=cut),
                **common,
            ).encode("utf-8")
    for asset in (STYLESHEET, FIT_JS):
        contents[out / asset] = resources.files("dashboards").joinpath("static", asset).read_bytes()
    contents[out / PLOTLY_JS] = plotly.offline.get_plotlyjs().encode("utf-8")
    contents[out / SITE_MARKER] = site_marker(made)
    written = write_outputs(out, contents)
    _remove_stale_account_pages(out, {INDEX, *(page.filename for page in pages)}, accounts if several else [])
    return written


@dataclass(frozen=True, slots=True)
class Switcher:
    """A page's account switcher: its links (each leading to that account's same page, the one shown marked),
    the account shown and how many accounts there are."""

    links: Markup
    shown: str
    count: int


class Switchers:
    """The account switcher of every page of a site of several accounts.

    Every page lists every account: rendering each page's links anew grew with the square of the accounts, so
    the links to one page are rendered once per folder depth (the all-accounts pages, an account's pages) and
    each page marks the account it shows.
    """

    def __init__(self, environment: jinja2.Environment, accounts: Sequence[str]) -> None:
        self._link = environment.get_template("switcher.html").module.account_link
        self._entries = [(None, "All accounts", ""), *((a, a, f"{ACCOUNTS_DIR}/{a}/") for a in accounts)]
        self._position = {name: index for index, (name, _, _) in enumerate(self._entries)}
        # (root, page) -> each account's link, then each one marked as the account shown
        self._links: dict[tuple[str, str], tuple[list[Markup], list[Markup]]] = {}

    def of(self, account: str | None, root: str, here: str) -> Switcher:
        """The account a page shows (None: all), the way up to the site's root and the page's file name -> its
        switcher."""
        if (root, here) not in self._links:
            hrefs = [(f"{root}{where}{here}", label) for _, label, where in self._entries]
            self._links[(root, here)] = (
                [self._link(href, label, False) for href, label in hrefs],
                [self._link(href, label, True) for href, label in hrefs],
            )
        plain, marked = self._links[(root, here)]
        at = self._position[account]
        return Switcher(
            links=Markup("").join([*plain[:at], marked[at], *plain[at + 1:]]),
            shown=self._entries[at][1], count=len(self._entries) - 1,
        )


def _remove_stale_account_pages(out: Path, names: set[str], accounts: Sequence[str]) -> None:
    """Remove the pages of accounts the warehouse no longer holds, so no switcher or bookmark leads to stale figures.

    Only the files a site writes go (anything else a user put there stays, and keeps its folder).
    """
    folder = out / ACCOUNTS_DIR
    if not folder.is_dir():
        return
    for stale in sorted(set(path.name for path in folder.iterdir() if path.is_dir()) - set(accounts)):
        for name in names:
            (folder / stale / name).unlink(missing_ok=True)
        with suppress(OSError):
            (folder / stale).rmdir()
    with suppress(OSError):
        folder.rmdir()


def render_data_dir_site(
    data_dir: Path | str,
    out_dir: Path | None,
    *,
    now: datetime,
    zone: str | None = None,
    configured: Accounts | None = None,
) -> list[Path]:
    """A data dir -> the site of its warehouse in out_dir, by default `<data dir>/site/` (see render_site).

    `zone`: the report time zone asked for (CDR_REPORT_TIMEZONE): UsageError, before anything is written, when
    the warehouse was built for another, as `cdr report finance` refuses it (None: the warehouse's own).
    `configured`: the configured accounts, whose file's unlisted accounts the partial months leave out as
    `cdr report finance` does (None: no accounts file).

    On an object store the default site is made in the data dir's local work folder, then
    uploaded to `<data dir>/site/`, its marker last.
    """
    from pipelines.accounts import DEFAULT_ACCOUNT
    from pipelines.lake import Lake
    from pipelines.models import warehouse_path
    from pipelines.remote import local_folder, publish_folder, require_data_dir
    from pipelines.reports import check_zone, lake_held, listed_accounts, unlisted_touched, warehouse_zone

    require_data_dir(data_dir)
    warehouse = warehouse_path(data_dir)
    if zone is not None and warehouse.is_file():
        check_zone(warehouse, warehouse_zone(warehouse), zone)
    site = local_folder(data_dir, SITE_DIR) if out_dir is None else Path(out_dir)
    lake = Lake(data_dir)
    accounts = lake.accounts() or [DEFAULT_ACCOUNT]
    held, unlisted = lake_held(lake, accounts), unlisted_touched(lake, accounts, configured)
    written = render_site(
        warehouse, site, synced_at=synced_at(data_dir), now=now, held=held, unlisted=unlisted,
        listed=listed_accounts(configured),
    )
    if out_dir is None:
        publish_folder(data_dir, site, SITE_DIR, last=SITE_MARKER)
    return written


def synced_text(synced: Synced | datetime | None) -> str:
    """How fresh the data is -> '2026-11-01 02:00 UTC (last sync finished 2026-11-01 02:07 UTC)', or 'never'."""
    if not isinstance(synced, Synced):
        return format_instant(synced)
    if synced.ran_at is None:
        return format_instant(synced.up_to)
    ended = "" if synced.run_status == "completed" else f", {synced.run_status}"
    return f"{format_instant(synced.up_to)} (last sync finished {format_instant(synced.ran_at)}{ended})"


def load_frames(
    warehouse_path: Path, sources: Sequence[Source], *, with_account: bool = False
) -> dict[Source, pl.DataFrame]:
    """A warehouse and sources -> one frame per source present (an optional one missing a table or
    column has none; `with_account`: with the table's account column too, if it has one);
    DashboardError names every missing table or column of the required ones."""
    path = Path(warehouse_path)
    with tempfile.TemporaryDirectory(prefix="cdr-dashboards-") as folder:
        scratch = Path(folder)
        with connect_read_only(path, scratch=scratch) as con:
            available = report_tables(con)
            problems = []
            present = []
            for item in sources:
                if item.table not in available:
                    lacks = [f"table {item.table}"]
                else:
                    missing = sorted(set(item.mapping.values()) - available[item.table])
                    lacks = [f"column {item.table}.{column}" for column in missing]
                if not lacks:
                    present.append(item)
                elif item.required:
                    problems.extend(lacks)
            if problems:
                unique = list(dict.fromkeys(problems))
                raise DashboardError(f"the warehouse {warehouse_name(path)} lacks {', '.join(unique)}: run `cdr build`")
            where = f"the warehouse {warehouse_name(path)}"
            return {
                item: read_report(
                    con, item.table, _with_account(item, available) if with_account else item.mapping,
                    scratch=scratch, available=available, where=where,
                )
                for item in present
            }


def _with_account(item: Source, available: dict[str, frozenset[str]]) -> dict[str, str]:
    """A source -> its columns and, last, the table's account column if it has one."""
    has = ACCOUNT in available.get(item.table, frozenset())
    return item.mapping | ({ACCOUNT: ACCOUNT} if has and ACCOUNT not in item.mapping else {})


def render_blocks(
    page: Page,
    frames: dict[Source, pl.DataFrame],
    *,
    combined: bool = False,
    partial: Mapping[str, MonthCoverage] | None = None,
    cut: figures.CutDay | None = None,
) -> list[dict[str, object]]:
    """A page spec and the frames (the period's among them; an optional source's may be missing) ->
    what its template draws, block by block: a block whose source is missing says to run `cdr build`.

    `combined`: the frames are several accounts' (the all-accounts pages); a block drawn per account
    only says so. `partial`: the partial months (default: `period_partial_months` of the warehouse alone).
    `cut`: the last day, when the data is synced only to a time inside it (`cut_day`).
    """
    partial = period_partial_months(frames[PERIOD]) if partial is None else partial
    after = period_open_from(frames[PERIOD])
    zone = period_zone(frames[PERIOD])
    blocks: list[dict[str, object]] = []
    for block in page.blocks:
        lacking = [item for item in (block.sources if isinstance(block, TilesSpec) else (block.source,))
                   if item not in frames]
        if lacking:
            notice = missing_notice(lacking[0])
            if not blocks or blocks[-1] != notice:
                blocks.append(notice)
        elif combined and not isinstance(block, TilesSpec) and not block.all_accounts:
            blocks.append(per_account_notice(block.key))
        elif isinstance(block, TilesSpec):
            extra = {"after": after} if block.by_open else {}
            blocks.append({"kind": "tiles", "tiles": block.build(*(frames[item] for item in block.sources), **extra)})
        elif isinstance(block, TableSpec):
            extra = ({"partial": partial} if block.by_month else {}) | ({"after": after} if block.by_open else {})
            blocks.append({"kind": "table", "key": block.key, "table": block.build(frames[block.source], **extra)})
        elif isinstance(block, FigureSpec):
            extra = ({"partial": partial} if block.by_month else {}) | ({"cut": cut} if block.by_day else {})
            if block.by_zone:
                extra["zone"] = zone
            if block.alert_rules:
                extra["markers"] = figures.alert_marks(frames.get(ALERTS), block.alert_rules, zone)
            figure = block.build(frames[block.source], **extra)
            blocks.append({"kind": "figure", "key": block.key, "wide": block.wide, "html": figure_html(figure, block.key)})
    return blocks


def missing_notice(item: Source) -> dict[str, object]:
    """A source the warehouse lacks -> the block saying so, and how to get it."""
    return {
        "kind": "missing", "key": f"missing-{item.table}",
        "message": f"This warehouse has no {item.table} table, or an older one (it was built before this version "
        "of the pipeline): run `cdr build`, then `cdr dashboards`.",
    }


def per_account_notice(key: str) -> dict[str, object]:
    """A block the accounts' rows do not combine into -> the block saying which it stands for and where to find it."""
    # It stands among titled figures: without the block's name a reader cannot tell which one is missing.
    shown = key.replace("-", " ").capitalize()
    return {
        "kind": "missing", "key": f"per-account-{key}",
        "message": f"{shown}: shown per account only, as the accounts' figures do not add up to one for all of them. "
        "Choose an account above.",
    }


def figure_html(figure: object, key: str) -> Markup:
    """A figure -> its <div> and the script drawing it with the page's plotly.js (not inlined)."""
    html = pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=f"fig-{key}",
        config=theme.CONFIG,
        default_width="100%",
        validate=False,
    )
    # plotly's JSON escapes <, > and / inside strings, so the script cannot be closed early.
    return Markup(html)


def describe_period(build_info: pl.DataFrame) -> tuple[str, str]:
    """The build-info row (first_report_date, last_report_date, report_timezone) ->
    ('YYYY-MM-DD to YYYY-MM-DD (N days)' or that there is no data, 'Days are <zone> calendar days')."""
    first = build_info["first_report_date"].min() if build_info.height else None
    last = build_info["last_report_date"].max() if build_info.height else None
    calendar = f"Days are {period_zone(build_info)} calendar days"
    if not isinstance(first, date) or not isinstance(last, date):
        return "no data yet", calendar
    days = (last - first).days + 1
    return f"{format_day(first)} to {format_day(last)} ({counted(days, 'day')})", calendar


def cut_day(build_info: pl.DataFrame, synced_to: datetime | None) -> figures.CutDay | None:
    """The build-info row (last_report_date, report_timezone) and the instant the data is synced up to ->
    the last report day and the local time it is synced to, when that instant falls inside it (its bars
    are not a whole day's), else None."""
    last = build_info["last_report_date"].max() if build_info.height else None
    if not isinstance(last, date) or synced_to is None:
        return None
    local = synced_to.astimezone(ZoneInfo(period_zone(build_info)))
    if local.date() != last or local.time() == time(0):
        return None
    return figures.CutDay(last, f"{local:%H:%M}")


def period_zone(build_info: pl.DataFrame) -> str:
    """The build-info row (report_timezone) -> the zone report days are in."""
    zone = build_info["report_timezone"].drop_nulls().first() if build_info.height else None
    return str(zone or "UTC")


def period_open_from(build_info: pl.DataFrame) -> datetime | None:
    """The build-info row (last_report_date, report_timezone) -> the instant an alert's window must end
    after to be open (`pipelines.alerts.open_from`), or None without data."""
    last = build_info["last_report_date"].max() if build_info.height else None
    return open_from(last, period_zone(build_info)) if isinstance(last, date) else None


def period_partial_months(
    build_info: pl.DataFrame,
    *,
    held: Mapping[str, Sequence[Window]] | None = None,
    now: datetime | None = None,
    unlisted: Mapping[str, Sequence[Window]] | None = None,
    listed: Sequence[str] = (),
) -> dict[str, MonthCoverage]:
    """The build-info row (first_report_date, last_report_date, report_timezone) -> the months the data covers only
    in part (`partial_months`)."""
    first = build_info["first_report_date"].min() if build_info.height else None
    last = build_info["last_report_date"].max() if build_info.height else None
    return partial_months(first, last, period_zone(build_info), held=held, now=now, unlisted=unlisted, listed=listed)


def partial_months(
    first: date | None,
    last: date | None,
    zone: str = "UTC",
    *,
    held: Mapping[str, Sequence[Window]] | None = None,
    now: datetime | None = None,
    unlisted: Mapping[str, Sequence[Window]] | None = None,
    listed: Sequence[str] = (),
) -> dict[str, MonthCoverage]:
    """The first and last report days with data in `zone` -> {'YYYY-MM': its coverage} for each month from the
    first's to the last's that a finance statement would be refused for (`pipelines.reports.partial_months`, one
    rule for both), so a month cut short never reads as a whole one.

    `held`: the instants the lake holds per account, as of `now`; None (a warehouse without its lake): the days
    from `first` to `last`, each whole. `unlisted`, `listed`: as `pipelines.reports.coverage_of`.
    """
    if not isinstance(first, date) or not isinstance(last, date):
        return {}
    if held is None:
        span = Window(parse_bound(first.isoformat(), tz=zone), parse_bound((last + timedelta(days=1)).isoformat(), tz=zone))
        held, now = {"": (span,)}, span.end
    months = [f"{year:04d}-{month:02d}" for year, month in _months(first, last)]
    return held_partial_months(held, months, zone, now=now or datetime.now(UTC), unlisted=unlisted, listed=listed)


def _months(first: date, last: date) -> list[tuple[int, int]]:
    """Two days -> the (year, month) of each month from the first's to the last's."""
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return [(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1) for n in range(max(count, 0))]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dashboards", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
