-- alert_cost_spike: one row per report day and currency x product, UTC hour and currency x product, or report day, currency and destination country (voice, outbound) whose cost is far above its usual; key: alert_key
-- observed: the window's cost; baseline: the median cost of the same weekday (same hour for an
-- hour) over the trailing [cost_spike] weeks, a day without records counting 0; threshold: the
-- highest of baseline x ratio, baseline + z x spread (1.4826 x MAD, at least relative_noise x
-- baseline), the highest past window x max_factor and min_amount. Fires above the threshold once
-- min_points past windows lie inside the account's history (a country's day: with country_min_calls). Severity: critical at baseline x critical_ratio or more, else warning.
with calls as (
    select * from fct_call_traffic_hourly
),

messages as (
    select * from fct_message_traffic_hourly
),

costs as (
    select utc_hour, report_date, 'voice' as product, direction, country_code, currency, calls as records, cost,
    from calls
    union all
    select utc_hour, report_date, message_type as product, direction, country_code, currency, messages as records, cost,
    from messages
),

-- the windows judged: a grain's period is a naive timestamp (local midnight of a report day, or
-- the UTC hour), so "the same weekday N weeks back" is exact arithmetic on it
series as (
    select 'day' as grain, report_date::timestamp as period, product, null::varchar as country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from costs
    group by all
    union all
    select 'hour' as grain, utc_hour as period, product, null::varchar as country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from costs
    group by all
    union all
    select 'country' as grain, report_date::timestamp as period, product, country_code, currency,
        sum(cost)::double as observed,
        sum(records) as records,
    from costs
    where product = 'voice' and direction = 'outbound'
    group by all
),

settings as (
    select
        grain,
        case grain when 'day' then threshold('cost_spike', 'day_ratio')
            when 'hour' then threshold('cost_spike', 'hour_ratio')
            else threshold('cost_spike', 'country_ratio') end as ratio,
        case grain when 'day' then threshold('cost_spike', 'day_z')
            when 'hour' then threshold('cost_spike', 'hour_z')
            else threshold('cost_spike', 'country_z') end as z,
        case grain when 'day' then threshold('cost_spike', 'day_min_amount')
            when 'hour' then threshold('cost_spike', 'hour_min_amount')
            else threshold('cost_spike', 'country_min_amount') end as min_amount,
        case grain when 'day' then threshold('cost_spike', 'day_max_factor')
            when 'hour' then threshold('cost_spike', 'hour_max_factor')
            else threshold('cost_spike', 'country_max_factor') end as max_factor,
    from (values ('day'), ('hour'), ('country')) as grains(grain)
),

history_start as (
    select
        min(report_date)::timestamp as first_day,
        min(utc_hour) as first_hour,
    from costs
),

weeks as (
    select range as weeks_back
    from range(1, 1000)
    where range <= threshold('cost_spike', 'weeks')
),

candidates as (
    select series.*, settings.ratio, settings.z, settings.min_amount, settings.max_factor,
    from series
    join settings using (grain)
    where series.observed >= settings.min_amount
        and (series.grain <> 'country' or series.records >= threshold('cost_spike', 'country_min_calls'))
),

histories as (
    select
        candidates.grain,
        candidates.period,
        candidates.product,
        candidates.country_code,
        candidates.currency,
        any_value(candidates.observed) as observed,
        any_value(candidates.ratio) as ratio,
        any_value(candidates.z) as z,
        any_value(candidates.min_amount) as min_amount,
        any_value(candidates.max_factor) as max_factor,
        list(coalesce(past.observed, 0) order by weeks.weeks_back) as history,
    from candidates
    cross join weeks
    cross join history_start
    left join series as past
        on past.grain = candidates.grain
        and past.product = candidates.product
        and past.country_code is not distinct from candidates.country_code
        and past.currency = candidates.currency
        and past.period = candidates.period - to_days(7 * weeks.weeks_back::integer)
    where candidates.period - to_days(7 * weeks.weeks_back::integer)
        >= (case when candidates.grain = 'hour' then history_start.first_hour else history_start.first_day end)
    group by all
),

scored as (
    select
        *,
        baseline_median(history) as baseline,
        greatest(
            baseline_median(history) * ratio,
            baseline_median(history)
                + z * greatest(baseline_spread(history), threshold('cost_spike', 'relative_noise') * baseline_median(history)),
            list_max(history) * max_factor,
            min_amount
        ) as threshold,
    from histories
    where len(history) >= threshold('cost_spike', 'min_points')
),

fired as (
    select
        *,
        case when grain = 'hour' then timezone('UTC', period) else report_day_start(period::date) end as window_start,
        case when grain = 'hour' then timezone('UTC', period + interval 1 hour)
            else report_day_start(period::date + 1) end as window_end,
    from scored
    where observed > threshold
),

final as (
    select
        alert_key('cost_spike', product, null, country_code, null, null, currency, window_start, window_end) as alert_key,
        'cost_spike' as rule,
        case when observed >= threshold('cost_spike', 'critical_ratio') * baseline then 'critical' else 'warning' end
            as severity,
        product,
        null::varchar as direction,
        country_code,
        null::varchar as connection_id,
        null::varchar as connection_name,
        null::varchar as carrier,
        currency,
        window_start,
        window_end,
        observed,
        baseline,
        threshold,
        (case product when 'voice' then 'Voice' when 'sms' then 'SMS' else 'MMS' end)
            || ' cost'
            || case when country_code is null then '' else ' to ' || country_code end
            || case when grain = 'hour' then ' in the hour from ' || strftime(period, '%Y-%m-%d %H:00') || ' UTC'
                else ' on ' || strftime(period, '%Y-%m-%d') end
            || ' was ' || printf('%.2f %s', observed, currency)
            || case when baseline > 0 then ', ' || printf('%.1f', observed / baseline) || 'x its usual '
                else ', against a usual ' end
            || printf('%.2f %s', baseline, currency)
            || ' (median of the same ' || case when grain = 'hour' then 'weekday hour' else 'weekday' end
            || ' over ' || len(history) || ' weeks); check the '
            || case when product = 'voice' then 'calls by destination and connection'
                else 'messages by destination and messaging profile' end
            || ' for fraud or a runaway sender.' as message,
    from fired
)

select * from final
