-- fct_calls_daily: one row per account, report date, UTC date, direction, country, connection, currency and call outcome; key: account, report_date, utc_date, direction, country_code, connection_id, currency, status, hangup_cause, sip_response_code
-- incremental: report_date
-- The base of every voice figure and of the finance statement: sums of it are sums of the records.
select
    account,
    report_date,
    utc_date,
    direction,
    country_code,
    connection_id,
    currency,
    status,
    hangup_cause,
    sip_response_code,
    count(*) as calls,
    count(*) filter (where is_answered) as answered_calls,
    count(*) filter (where is_short_call) as short_calls,
    count(*) filter (where is_network_failure) as network_failures,
    coalesce(sum(talk_secs) filter (where is_answered), 0)::bigint as talk_secs,
    sum(billed_duration_secs)::bigint as billed_duration_secs,
    sum(cost) as cost,
    -- calls whose billed seconds or cost break the contract's billing rules (a data test lists them)
    count(*) filter (where is_misbilled_duration or is_misbilled_cost) as misbilled_calls,
    -- a connection's name can change; the latest version names it (macros/latest_name.sql)
    latest_name(connection_name, updated_at) as connection_name,
    max(updated_at) as last_updated_at,
from int_calls_dated
group by all
