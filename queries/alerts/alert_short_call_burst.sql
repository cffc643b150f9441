-- alert_short_call_burst: one row per account, UTC hour and destination country with a burst of very short outbound calls (traffic pumping, wangiri); key: account, country_code, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- Short: answered, at most 6 talk seconds (int_calls_dated.is_short_call). observed: the hour's
-- short outbound calls to the country; baseline: the median of the same UTC hour over the trailing
-- [short_call_burst] days (an hour without them counting 0); threshold: the highest of baseline x
-- ratio, baseline + z x spread (at least the Poisson spread, sqrt(baseline)) and min_short_calls.
-- Fires above it once min_points past days lie in the account's history. Severity: critical at
-- critical_short_calls or more, else warning.
with calls as not materialized (
    select * from fct_call_traffic_hourly
),

-- each account's history begins with its own first call, in all history
account_starts as (
    select account, min(first_utc_hour) as first_hour from fct_traffic_days where records = 'calls' group by account
),

hours as (
    select calls.account, account_starts.first_hour, utc_hour, country_code,
        sum(short_calls)::double as observed, sum(calls)::double as calls,
    from calls
    join account_starts on calls.account = account_starts.account
    -- the days the windows recomputed look back on (every day in a full build)
    where report_date >= lookback_start(threshold('short_call_burst', 'days'))
        and direction = 'outbound'
    group by all
),

fired as (
    select *
    from spike_windows(
        'hours',
        scope_key := struct_pack(account, country_code),
        window_period := utc_hour,
        is_judged := observed >= threshold('short_call_burst', 'min_short_calls'),
        history_start := first_hour,
        steps := threshold('short_call_burst', 'days'),
        step := interval 1 day,
        min_points := threshold('short_call_burst', 'min_points'),
        spike_ratio := threshold('short_call_burst', 'ratio'),
        spike_z := threshold('short_call_burst', 'z'),
        least_spread := sqrt(baseline_median(history)),
        minimum := threshold('short_call_burst', 'min_short_calls')
    )
)

select *
from alert_rows(
    'fired',
    rule_name := 'short_call_burst',
    severity_level := case when observed >= threshold('short_call_burst', 'critical_short_calls') then 'critical' else 'warning' end,
    scope_columns := struct_pack(product := 'voice', direction := 'outbound', country_code),
    alert_window := utc_hour_window(utc_hour),
    message_text := counted(observed, 'outbound call') || ' to ' || country_code || ' lasted 6 seconds or less in the hour from '
        || strftime(utc_hour, '%Y-%m-%d %H:00') || ' UTC (of ' || counted(calls, 'call') || '), against a usual '
        || printf('%.0f', baseline) || ' (median of that hour over ' || counted(len(history), 'day')
        || '); look for traffic pumping or wangiri callbacks and block the numbers called.'
)
