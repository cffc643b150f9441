-- alert_cost_spike: one row per account and report day and currency x product, UTC hour and currency x product, or report day, currency and destination country (voice, outbound) whose cost is far above its usual; key: account, product, country_code, currency, window_start, window_end (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- observed: the window's cost; baseline: the median cost of the same weekday (same hour for an
-- hour) over the trailing [cost_spike] weeks, a day without records counting 0; threshold: the
-- highest of baseline x ratio, baseline + z x spread (1.4826 x MAD, at least relative_noise x
-- baseline), the highest past window x max_factor and min_amount. Fires above the threshold once
-- min_points past windows lie inside the account's history (a country's day: with country_min_calls). Severity: critical at baseline x critical_ratio or more, else warning.
with calls as not materialized (
    select * from fct_call_traffic_hourly
),

messages as not materialized (
    select * from fct_message_traffic_hourly
),

costs as not materialized (
    select account, utc_hour, report_date, 'voice' as product, direction, country_code, currency, calls as records, cost,
    from calls
    union all
    select account, utc_hour, report_date, message_type as product, direction, country_code, currency, messages as records, cost,
    from messages
),

-- the days the windows recomputed look back on (every day in a full build)
recent_costs as (
    select * from costs where report_date >= lookback_start(7 * threshold('cost_spike', 'weeks'))
),

-- the windows judged: a grain's period is a naive timestamp (local midnight of a report day, or
-- the UTC hour), so "the same weekday N weeks back" is exact arithmetic on it
series as (
    select account, 'day' as grain, report_date::timestamp as period, product, null::varchar as country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from recent_costs
    group by all
    union all
    select account, 'hour' as grain, utc_hour as period, product, null::varchar as country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from recent_costs
    group by all
    union all
    select account, 'country' as grain, report_date::timestamp as period, product, country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from recent_costs
    where product = 'voice' and direction = 'outbound'
    group by all
),

settings as (
    select *
    from (values
        ('day', threshold('cost_spike', 'day_ratio'), threshold('cost_spike', 'day_z'),
            threshold('cost_spike', 'day_min_amount'), threshold('cost_spike', 'day_max_factor')),
        ('hour', threshold('cost_spike', 'hour_ratio'), threshold('cost_spike', 'hour_z'),
            threshold('cost_spike', 'hour_min_amount'), threshold('cost_spike', 'hour_max_factor')),
        ('country', threshold('cost_spike', 'country_ratio'), threshold('cost_spike', 'country_z'),
            threshold('cost_spike', 'country_min_amount'), threshold('cost_spike', 'country_max_factor'))
    ) as settings(grain, ratio, z, min_amount, max_factor)
),

-- each account's history begins with its own first record, in all history
history_start as (
    select
        account,
        min(report_date)::timestamp as first_day,
        min(first_utc_hour) as first_hour,
    from fct_traffic_days
    group by account
),

windows as (
    select
        series.*,
        settings.* exclude (grain),
        case when series.grain = 'hour' then history_start.first_hour else history_start.first_day end as first_period,
    from series
    join settings using (grain)
    join history_start on series.account = history_start.account
),

fired as (
    select *
    from spike_windows(
        'windows',
        scope_key := struct_pack(account, grain, product, country_code, currency),
        window_period := period,
        is_judged := observed >= min_amount and (grain <> 'country' or records >= threshold('cost_spike', 'country_min_calls')),
        history_start := first_period,
        steps := threshold('cost_spike', 'weeks'),
        step := interval 7 day,
        min_points := threshold('cost_spike', 'min_points'),
        spike_ratio := ratio,
        spike_z := z,
        least_spread := threshold('cost_spike', 'relative_noise') * baseline_median(history),
        minimum := greatest(list_max(history) * max_factor, min_amount)
    )
)

select *
from alert_rows(
    'fired',
    rule_name := 'cost_spike',
    severity_level := case when observed >= threshold('cost_spike', 'critical_ratio') * baseline then 'critical' else 'warning' end,
    scope_columns := struct_pack(product, country_code, currency),
    alert_window := case when grain = 'hour' then utc_hour_window(period) else report_day_window(period::date) end,
    message_text := (case product when 'voice' then 'Voice' when 'sms' then 'SMS' else 'MMS' end)
        || ' cost'
        || case when country_code is null then '' else ' to ' || country_code end
        || case when grain = 'hour' then ' in the hour from ' || strftime(period, '%Y-%m-%d %H:00') || ' UTC'
            else ' on ' || strftime(period, '%Y-%m-%d') end
        || ' was ' || printf('%.2f %s', observed, currency)
        || case when baseline > 0 then ', ' || printf('%.1f', observed / baseline) || 'x its usual '
            else ', against a usual ' end
        || printf('%.2f %s', baseline, currency)
        || ' (median of the same ' || case when grain = 'hour' then 'weekday hour' else 'weekday' end
        || ' over ' || counted(len(history), 'week') || '); check the '
        || case when product = 'voice' then 'calls by destination and connection'
            else 'messages by destination and messaging profile' end
        || ' for fraud or a runaway sender.'
)
