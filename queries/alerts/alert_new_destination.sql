-- alert_new_destination: one row per account, report day, product and country with outbound traffic to a country not seen in the trailing days; key: account, product, country_code, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- observed: the day's outbound calls (or messages of the type) to the country; baseline: how many
-- there were in the [new_destination] lookback_days before it; threshold: min_count. Fires when the
-- day reaches min_count while the lookback held fewer, once the account has min_history_days of
-- records before the day (a new account's every country is new). Severity: warning.
with calls as not materialized (
    select * from fct_call_traffic_hourly
),

messages as not materialized (
    select * from fct_message_traffic_hourly
),

traffic as not materialized (
    select account, report_date, 'voice' as product, country_code, calls as records from calls where direction = 'outbound'
    union all
    select account, report_date, message_type as product, country_code, messages as records
    from messages
    where direction = 'outbound'
),

days as (
    select account, report_date, product, country_code, sum(records)::double as observed,
    from traffic
    -- the days the windows recomputed look back on (every day in a full build)
    where report_date >= lookback_start(threshold('new_destination', 'lookback_days'))
    group by all
),

-- each account's history begins with its own first record, in all history
history_start as (
    select account, min(report_date) as first_day from fct_traffic_days where direction = 'outbound' group by account
),

lookback as (
    select
        *,
        coalesce(sum(observed) over (
            partition by account, product, country_code
            order by report_date
            range between interval (threshold('new_destination', 'lookback_days')) day preceding
                and interval 1 day preceding
        ), 0) as baseline,
    from days
),

fired as (
    select lookback.*, threshold('new_destination', 'min_count') as threshold,
    from lookback
    join history_start on lookback.account = history_start.account
    -- only the days this build recomputes (every one in a full build)
    where lookback.report_date >= lookback_start(0)
        and lookback.observed >= threshold('new_destination', 'min_count')
        and lookback.baseline < threshold('new_destination', 'min_count')
        and lookback.report_date - history_start.first_day >= threshold('new_destination', 'min_history_days')
)

select *
from alert_rows(
    'fired',
    rule_name := 'new_destination',
    severity_level := 'warning',
    scope_columns := struct_pack(product, direction := 'outbound', country_code),
    alert_window := report_day_window(report_date),
    message_text := counted(observed, 'outbound ' || case when product = 'voice' then 'call' else upper(product) || ' message' end)
        || ' to ' || country_code || ' on ' || strftime(report_date, '%Y-%m-%d') || ', a country with '
        || case when baseline = 0 then 'none' else 'only ' || printf('%,d', baseline::bigint) end
        || ' in the ' || counted(threshold('new_destination', 'lookback_days'), 'day')
        || ' before; confirm the destination is expected, or block it.'
)
