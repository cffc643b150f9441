-- alert_after_hours: one row per account, report day, currency and product whose outbound cost outside business hours is far above its usual; key: account, product, currency, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- Business hours: [after_hours] start_hour to end_hour, Monday to Friday, in the reporting time zone
-- (weekends all day after hours when weekends = 1). observed: the day's outbound cost outside them;
-- baseline: the median of the same weekday over the trailing weeks (a day without any counting 0);
-- threshold: the highest of baseline x ratio, baseline + z x spread (at least relative_noise x
-- baseline), the highest past day x max_factor and min_amount; only with min_points past days. Severity: critical at baseline x
-- critical_ratio or more, else warning.
with calls as not materialized (
    select * from fct_call_traffic_hourly
),

messages as not materialized (
    select * from fct_message_traffic_hourly
),

traffic as not materialized (
    select account, report_date, report_hour, 'voice' as product, currency, cost from calls where direction = 'outbound'
    union all
    select account, report_date, report_hour, message_type as product, currency, cost
    from messages
    where direction = 'outbound'
),

-- each account's history begins with its own first record, in all history
account_starts as (
    select account, min(report_date) as first_day from fct_traffic_days where direction = 'outbound' group by account
),

days as (
    select account, report_date, product, currency, sum(cost)::double as observed,
    from traffic
    -- the days the windows recomputed look back on (every day in a full build)
    where report_date >= lookback_start(7 * threshold('after_hours', 'weeks'))
        and (
            report_hour < threshold('after_hours', 'start_hour')
            or report_hour >= threshold('after_hours', 'end_hour')
            or (threshold('after_hours', 'weekends') = 1 and isodow(report_date) >= 6)
        )
    group by all
),

started_days as (
    select days.*, account_starts.first_day,
    from days
    join account_starts on days.account = account_starts.account
),

fired as (
    select *
    from spike_windows(
        'started_days',
        scope_key := struct_pack(account, product, currency),
        window_period := report_date,
        is_judged := observed >= threshold('after_hours', 'min_amount'),
        history_start := first_day,
        steps := threshold('after_hours', 'weeks'),
        step := interval 7 day,
        min_points := threshold('after_hours', 'min_points'),
        spike_ratio := threshold('after_hours', 'ratio'),
        spike_z := threshold('after_hours', 'z'),
        least_spread := threshold('after_hours', 'relative_noise') * baseline_median(history),
        minimum := greatest(list_max(history) * threshold('after_hours', 'max_factor'), threshold('after_hours', 'min_amount'))
    )
)

select *
from alert_rows(
    'fired',
    rule_name := 'after_hours',
    severity_level := case when observed >= threshold('after_hours', 'critical_ratio') * baseline then 'critical' else 'warning' end,
    scope_columns := struct_pack(product, direction := 'outbound', currency),
    alert_window := report_day_window(report_date),
    message_text := 'Outbound ' || case product when 'voice' then 'voice' when 'sms' then 'SMS' else 'MMS' end
        || ' cost outside business hours (' || printf('%02d:00-%02d:00', threshold('after_hours', 'start_hour')::integer,
            threshold('after_hours', 'end_hour')::integer) || ' ' || report_timezone() || ') on '
        || strftime(report_date, '%Y-%m-%d') || ' was ' || printf('%.2f %s', observed, currency)
        || case when baseline > 0 then ', ' || printf('%.1f', observed / baseline) || 'x its usual ' else ', against a usual ' end
        || printf('%.2f %s', baseline, currency) || ' (median of the same weekday over ' || counted(len(history), 'week')
        || '); check the night''s traffic by destination for fraud.'
)
