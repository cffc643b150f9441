"""Hand-made DuckDB warehouses holding only the `rpt_` tables the dashboards read.

`build_warehouse` writes every report table with deterministic rows: small by default (three
months, a few names), or large (three years, thousands of connections, carriers, causes and
reasons) to prove pages stay small. Some names carry markup, quotes, `$` and Unicode on
purpose: they must show as typed, never run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import plotly.graph_objects as go

from dashboards.plot import Figure

HOSTILE_CONNECTION = "<script>alert(1)</script>"
HOSTILE_CARRIER = 'AT&T <b>bold</b> "quoted" $x$'
HOSTILE_TAG = "東京 & <i>Co</i>"
HOSTILE_PROFILE = "<img src=x onerror=alert(2)>"

NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
SYNCED_AT = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)


def drawn(figure: Figure) -> go.Figure:
    """A figure's JSON -> plotly's graph objects, read as attributes; plotly validates every property on the
    way, so a misspelt or misplaced one fails the test (the pages write the JSON unvalidated)."""
    return go.Figure(figure)


def page_figure(html: str, key: str) -> Figure:
    """A page and a figure's key -> the figure's data and layout as the page hands them to Plotly.newPlot."""
    call = re.search(rf'Plotly\.newPlot\(\s*"fig-{re.escape(key)}",\s*', html)
    assert call, f"no figure fig-{key} on the page"
    return _figure_at(html, call.end())


def page_figures(html: str) -> dict[str, Figure]:
    """A page -> each figure's div id ('fig-' and its key) -> its data and layout, as `page_figure`."""
    calls = re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', html)
    return {call[1]: _figure_at(html, call.end()) for call in calls}


def _figure_at(html: str, start: int) -> Figure:
    """A page and where a Plotly.newPlot call's data starts -> the figure's data and layout."""
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(html, start)
    layout, _ = decoder.raw_decode(html, re.compile(r"\s*,\s*").match(html, end).end())
    return {"data": data, "layout": layout}


@dataclass(frozen=True)
class Shape:
    """How much data a fixture warehouse holds."""

    first_day: date
    days: int
    connections: int
    carriers: int
    countries: int
    causes: int
    reasons: int
    profiles: int
    tags: int
    # Alerts beyond the hand-made ones: new destinations spread over the days before the last two.
    alerts: int = 0


SMALL = Shape(date(2026, 8, 1), 92, 5, 6, 8, 6, 5, 3, 4)
LARGE = Shape(date(2023, 11, 1), 1096, 5000, 3000, 240, 600, 1500, 800, 2000, 3000)

# A name set that always contains the hostile names, then generated ones.
_NAMES = """
create temp table names as
select 'connection' as kind, 0 as i, $connection as name union all
select 'carrier', 0, $carrier union all
select 'tag', 0, $tag union all
select 'profile', 0, $profile union all
select 'connection', i, 'Trunk ' || i from range(1, $connections) t(i) union all
select 'carrier', i, 'Carrier ' || i from range(1, $carriers) t(i) union all
select 'tag', i, 'tag-' || i from range(1, $tags) t(i) union all
select 'profile', i, 'Profile ' || i from range(1, $profiles) t(i)
"""

# The hand-made alerts, counted back from the last report day. Open (fired on either of the last
# two days): the cost spike (on since the day before the last, two alerts) and the ASR drop of the
# hostile connection. Cleared: the rest.
ALERT_ROWS = """
values
    ('cost_spike', 'critical', 'voice', 'outbound', null, null, null, null, 'USD', 1, 0, 24, 950.0, 120.0, 300.0,
     'Voice cost in USD reached 950.00 in a day, 7.9x its usual 120.00: look for toll fraud.'),
    ('cost_spike', 'critical', 'voice', 'outbound', null, null, null, null, 'USD', 0, 0, 24, 880.0, 120.0, 300.0,
     'Voice cost in USD reached 880.00 in a day, 7.3x its usual 120.00: look for toll fraud.'),
    ('asr_drop', 'warning', 'voice', 'outbound', null, 'c0nn-0', $connection, null, null, 1, 0, 24, 0.2, 0.75, 0.4,
     'ASR of connection ' || $connection || ' fell to 20.0 % from its usual 75.0 %: check the trunk.'),
    ('short_call_burst', 'warning', 'voice', 'outbound', 'GB', null, null, null, null, 47, 3, 1, 620.0, 12.0, 100.0,
     '620 answered calls of at most 6 s to GB in one hour, usually 12: traffic pumping?'),
    ('message_volume_spike', 'info', 'sms', 'outbound', 'NG', null, null, null, null, 72, 0, 24, 4100.0, 300.0, 1500.0,
     '4,100 SMS to NG in a day, usually 300, 22 % delivered: SMS pumping?'),
    ('asr_drop', 'warning', 'voice', 'outbound', 'FR', null, null, null, null, 7, 0, 24, 0.31, 0.62, 0.45,
     'ASR to FR fell to 31.0 % from its usual 62.0 %.'),
    ('asr_drop', 'warning', 'voice', 'outbound', 'FR', null, null, null, null, 6, 0, 24, 0.33, 0.62, 0.45,
     'ASR to FR fell to 33.0 % from its usual 62.0 %.'),
    ('high_risk_destination', 'critical', 'voice', 'outbound', 'CU', null, null, $carrier, 'USD', 20, 0, 24,
     120.0, 0.0, 3.0, '120 calls to high-risk numbers in CU via ' || $carrier || ', 310.00 USD.')
"""

# Same names, columns and types as queries/reports/*.sql (only the columns pages read, plus keys).
_TABLES = [
    """
    create table rpt_finance_daily_cost as
    select d::date as report_date, p.product, c.currency,
           (10 + (i * 7 + p.k * 13) % 50)::bigint as records,
           (case when p.product = 'voice' then (10 + (i * 7 + p.k * 13) % 50) * 61 else 0 end)::bigint
               as billed_duration_secs,
           (case when p.product = 'voice' then 0 else 11 + (i * 7 + p.k * 13) % 50 end)::bigint as parts,
           ((10 + (i * 7 + p.k * 13) % 50) * (0.012345 + p.k * 0.0001)
               * (case c.currency when 'EUR' then 0.5 else 1 end))::decimal(38, 9) as cost
    from (select $first + to_days(i::int) as d, i from range(0, $days) t(i)) days,
         (values ('voice', 1), ('sms', 2), ('mms', 3)) p(product, k),
         (values ('USD'), ('EUR')) c(currency)
    """,
    """
    create table rpt_build_info as
    select now() as built_at, 'UTC' as report_timezone,
           sum(records) filter (where product = 'voice')::bigint as calls,
           sum(records) filter (where product <> 'voice')::bigint as messages,
           min(report_date) as first_report_date, max(report_date) as last_report_date
    from rpt_finance_daily_cost
    """,
    """
    create table rpt_finance_monthly_statement as
    select strftime(report_date, '%Y-%m') as month, product,
           case when product = 'voice' then 'outbound' else 'inbound' end as direction, currency,
           sum(records)::bigint as records, sum(billed_duration_secs)::bigint as billed_duration_secs,
           sum(parts)::bigint as parts, sum(cost)::decimal(38, 9) as cost
    from rpt_finance_daily_cost group by all
    """,
    """
    create table rpt_finance_month_over_month as
    with monthly as (
        select month, product, currency, sum(records) as records, sum(cost) as cost
        from rpt_finance_monthly_statement group by all
    )
    select m.month, m.product, m.currency, m.records::bigint as records, m.cost::decimal(38, 9) as cost,
           p.cost::decimal(38, 9) as previous_cost, (m.cost - p.cost)::decimal(38, 9) as cost_change,
           round(100 * (m.cost - p.cost) / nullif(p.cost, 0), 2)::double as cost_change_pct
    from monthly m left join monthly p
      on strftime(strptime(m.month, '%Y-%m') - interval 1 month, '%Y-%m') = p.month
     and m.product = p.product and m.currency = p.currency
    """,
    """
    create table rpt_finance_cost_by_country as
    -- two months whose top 10s differ: September ranks the countries the other way round
    with countries as (
        select m.month, c.currency, chr((65 + i // 26 % 26)::integer) || chr((65 + i % 26)::integer) as country_code,
               (1000.5 / (case when m.month = '2026-09' then 2 * $countries - i else i + 1 end))::decimal(38, 9) as cost
        from range(0, 2 * $countries) t(i), (values ('USD'), ('EUR')) c(currency), (values ('2026-09'), ('2026-10')) m(month)
    ),
    ranked as (
        select *, row_number() over (partition by month, currency order by cost desc, country_code) as cost_rank
        from countries
    )
    select month, currency, cost_rank as country_rank, country_code, country_code as country_label,
           -- every third country messages alone: no calls, no billed seconds; each country two messages
           (cost_rank % 3 + 2)::bigint as records,
           (cost_rank % 3)::bigint as calls, (cost * 600 * sign(cost_rank % 3))::bigint as billed_duration_secs, cost
    from ranked where cost_rank <= 10
    union all
    select month, currency, 11, null, 'Other (' || count(*) || ' countries)', 3 * count(*)::bigint, count(*)::bigint,
           sum(cost * 600)::bigint, sum(cost)::decimal(38, 9)
    from ranked where cost_rank > 10 group by month, currency
    """,
    """
    create table rpt_finance_cost_by_connection as
    select m.month, 'c0nn-' || i as connection_id, name as connection_name, 'USD' as currency,
           (100 // (i + 1))::bigint as calls, (500 / (i + 1) + 0.000001)::decimal(38, 9) as cost
    from names, (values ('2026-09'), ('2026-10')) m(month) where kind = 'connection'
    """,
    """
    create table rpt_finance_cost_by_messaging_profile as
    select '2026-10' as month, 'pr0f-' || i as messaging_profile_id, name as messaging_profile_name,
           'USD' as currency, (80 / (i + 1))::decimal(38, 9) as cost
    from names where kind = 'profile'
    """,
    """
    create table rpt_finance_cost_by_tag as
    select '2026-10' as month, case when i = 1 then null else name end as tag, 'voice' as product,
           'EUR' as currency, (10 * i)::bigint as records, (60 / (i + 1))::decimal(38, 9) as cost
    from names where kind = 'tag'
    """,
    """
    create table rpt_voice_quality_daily as
    select $first + to_days(i::int) as report_date, d.direction,
           (200 + i % 40)::bigint as calls, (150 + i % 30)::bigint as answered_calls,
           (150 + i % 30) / (200 + i % 40) as asr, 95.5 + i % 60 as acd_secs, 0.9 + (i % 7) / 100 as ner,
           (8 + i % 5)::bigint as short_calls, (8 + i % 5) / (150 + i % 30) as short_call_share
    from range(0, $days) t(i), (values ('inbound'), ('outbound')) d(direction)
    """,
    """
    create table rpt_voice_quality_by_country as
    select '2026-10' as month, 'outbound' as direction,
           chr((65 + i // 26 % 26)::integer) || chr((65 + i % 26)::integer) as country_code,
           (1000 - i)::bigint as calls, (500 + i)::bigint as answered_calls,
           (500 + i) / (1000 - i) as asr, 60.0 + i as acd_secs, 0.8 + (i % 15) / 100 as ner
    from range(0, $countries) t(i)
    """,
    """
    create table rpt_call_outcomes_daily as
    select $first + to_days(d::int) as report_date,
           case i when 0 then 'answered' else 'failed' end as status,
           case i when 0 then 'normal_clearing' when 1 then 'user_busy' when 2 then 'no_answer'
                else 'cause_' || i end as hangup_cause,
           (case i when 0 then 200 when 1 then 486 when 2 then 480 else 500 + i % 99 end)::integer
               as sip_response_code,
           (5000 // (i + 1) + d % 3)::bigint as calls
    from range(0, $causes) t(i), range(0, least($days, 31)) days(d)
    """,
    """
    create table rpt_calls_by_weekday_hour as
    select m.month, w::integer as weekday, h::integer as hour,
           (case when h between 8 and 18 and w <= 5 then 300 else 40 end + (w * h) % 17)::bigint as calls
    from range(1, 8) a(w), range(0, 24) b(h), (values ('2026-09'), ('2026-10')) m(month)
    """,
    """
    create table rpt_peak_concurrent_calls_daily as
    select $first + to_days(i::int) as report_date, (20 + (i * 11) % 35)::bigint as peak_concurrent_calls
    from range(0, $days) t(i)
    """,
    """
    create table rpt_message_delivery_by_carrier as
    select '2026-10' as month, name as carrier, (4000 // (i + 1) + 10)::bigint as messages,
           ((4000 // (i + 1) + 10) * (0.97 - (i % 9) / 100))::bigint as delivered
    from names where kind = 'carrier'
    """,
    """
    create table rpt_message_delivery_by_country as
    select '2026-10' as month, chr((65 + i // 26 % 26)::integer) || chr((65 + i % 26)::integer) as country_code,
           (3000 - i)::bigint as messages, ((3000 - i) * (0.95 - (i % 6) / 100))::bigint as delivered
    from range(0, $countries) t(i)
    """,
    """
    create table rpt_message_parts as
    select '2026-10' as month, t.message_type, t.encoding, i::bigint as parts,
           (10000 // (i * i) // t.k)::bigint as messages
    from range(1, least($reasons, 40) + 1) p(i),
         (values ('sms', 'gsm7', 1), ('sms', 'ucs2', 3), ('mms', 'gsm7', 7)) t(message_type, encoding, k)
    """,
    """
    create table rpt_message_failure_reasons as
    select '2026-10' as month, (30000 + i)::varchar as error_code,
           case i when 0 then 'Invalid destination <number>' else 'Failure reason ' || i end as error_title,
           (900 // (i + 1) + 1)::bigint as messages
    from range(0, $reasons) t(i)
    """,
    """
    create table rpt_reconciliation_daily as
    -- most rows match; some differ by a quarantined record (explained), a few by an unexplained one
    with pipeline as (
        select report_date as utc_date, case when product = 'voice' then 'calls' else 'messages' end as product,
               currency, sum(records) as records, sum(cost) as cost
        from rpt_finance_daily_cost group by 1, 2, 3
    ),
    flagged as (
        select *, case (day(utc_date) + length(product) + length(currency)) % 11
                      when 3 then 'mismatch' when 5 then 'explained_by_quarantine' when 7 then 'explained_by_quarantine'
                      else 'match' end as status
        from pipeline
    ),
    differences as (
        select *, case status when 'mismatch' then -1 when 'explained_by_quarantine' then 1 else 0 end as missing,
               case status when 'mismatch' then -0.01 when 'explained_by_quarantine' then 0.005 else 0 end as missing_cost
        from flagged
    )
    select utc_date, product, currency, records::bigint as pipeline_records,
           (records + missing)::bigint as api_records,
           cost::decimal(38, 9) as pipeline_cost,
           (cost + missing_cost)::decimal(38, 9) as api_cost,
           (-missing_cost)::decimal(38, 9) as cost_diff,
           (case when status = 'explained_by_quarantine' then missing else 0 end)::bigint as quarantined_records,
           (case when status = 'explained_by_quarantine' then missing_cost else 0 end)::decimal(38, 9) as quarantined_cost,
           status
    from differences
    """,
    f"""
    create table rpt_alerts as
    with hand (rule, severity, product, direction, country_code, connection_id, connection_name, carrier, currency,
               days_back, start_hour, hours, observed, baseline, threshold, message) as ({ALERT_ROWS}),
    bulk as (
        select 'new_destination', 'warning', 'voice', 'outbound',
               chr((65 + i // 26 % 26)::integer) || chr((65 + i % 26)::integer), null, null, null, null,
               2 + i % ($days - 2), 0, 24, 25.0, 0.0, 10.0,
               '25 outbound calls to ' || chr((65 + i // 26 % 26)::integer) || chr((65 + i % 26)::integer)
                   || ', not called in the 90 days before.'
        from range(0, $alerts) t(i)
    ),
    windows as (
        select *, timezone('UTC', ($first + to_days(($days - 1 - days_back)::int))::timestamp
                                  + to_hours(start_hour::int)) as window_start
        from (select * from hand union all select * from bulk)
    )
    select md5(concat_ws('|', rule, coalesce(product, ''), coalesce(direction, ''), coalesce(country_code, ''),
                         coalesce(connection_id, ''), coalesce(connection_name, ''), coalesce(carrier, ''),
                         coalesce(currency, ''), window_start::varchar, hours::varchar)) as alert_key,
           'default'::varchar as account,
           rule::varchar as rule, severity::varchar as severity, product::varchar as product,
           direction::varchar as direction, country_code::varchar as country_code,
           connection_id::varchar as connection_id, connection_name::varchar as connection_name,
           carrier::varchar as carrier, currency::varchar as currency,
           window_start, window_start + to_hours(hours::int) as window_end,
           observed::double as observed, baseline::double as baseline, threshold::double as threshold,
           message::varchar as message
    from windows
    """,
]


def build_warehouse(path: Path, shape: Shape = SMALL, *, empty: bool = False) -> Path:
    """A path and a shape -> a DuckDB file with every rpt_ table the dashboards read (rows or none)."""
    params = {
        "first": shape.first_day,
        "days": shape.days,
        "connections": shape.connections,
        "carriers": shape.carriers,
        "countries": shape.countries,
        "causes": shape.causes,
        "reasons": shape.reasons,
        "profiles": shape.profiles,
        "tags": shape.tags,
        "alerts": shape.alerts,
        "connection": HOSTILE_CONNECTION,
        "carrier": HOSTILE_CARRIER,
        "tag": HOSTILE_TAG,
        "profile": HOSTILE_PROFILE,
    }
    con = duckdb.connect(str(path))
    try:
        con.execute(_NAMES, {k: params[k] for k in ("connection", "carrier", "tag", "profile", "connections",
                                                   "carriers", "tags", "profiles")})
        for statement in _TABLES:
            used = {name: value for name, value in params.items() if f"${name}" in statement}
            con.execute(statement, used)
        if empty:
            for (table,) in con.execute("select table_name from duckdb_tables() where table_name like 'rpt_%'").fetchall():
                con.execute(f"delete from {table}")
    finally:
        con.close()
    return path
