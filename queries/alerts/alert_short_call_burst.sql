-- alert_short_call_burst: one row per UTC hour and destination country with a burst of very short outbound calls (traffic pumping, wangiri); key: alert_key
-- Short: answered, at most 6 talk seconds (int_calls_dated.is_short_call). observed: the hour's
-- short outbound calls to the country; baseline: the median of the same UTC hour over the trailing
-- [short_call_burst] days (an hour without them counting 0); threshold: the highest of baseline x
-- ratio, baseline + z x spread (at least the Poisson spread, sqrt(baseline)) and min_short_calls.
-- Fires above it once min_points past days lie in the account's history. Severity: critical at
-- critical_short_calls or more, else warning.
with calls as (
    select * from fct_call_traffic_hourly
),

hours as (
    select utc_hour, country_code, sum(short_calls)::double as observed, sum(calls)::double as calls,
    from calls
    where direction = 'outbound'
    group by all
),

history_start as (
    select min(utc_hour) as first_hour from calls
),

steps as (
    select range as days_back
    from range(1, 1000)
    where range <= threshold('short_call_burst', 'days')
),

histories as (
    select
        candidates.utc_hour,
        candidates.country_code,
        any_value(candidates.observed) as observed,
        any_value(candidates.calls) as calls,
        list(coalesce(past.observed, 0) order by steps.days_back) as history,
    from hours as candidates
    cross join steps
    cross join history_start
    left join hours as past
        on past.country_code = candidates.country_code
        and past.utc_hour = candidates.utc_hour - to_days(steps.days_back::integer)
    where candidates.observed >= threshold('short_call_burst', 'min_short_calls')
        and candidates.utc_hour - to_days(steps.days_back::integer) >= history_start.first_hour
    group by all
),

scored as (
    select
        *,
        baseline_median(history) as baseline,
        greatest(
            baseline_median(history) * threshold('short_call_burst', 'ratio'),
            baseline_median(history) + threshold('short_call_burst', 'z')
                * greatest(baseline_spread(history), sqrt(baseline_median(history))),
            threshold('short_call_burst', 'min_short_calls')
        ) as threshold,
    from histories
    where len(history) >= threshold('short_call_burst', 'min_points')
),

final as (
    select
        alert_key(
            'short_call_burst', 'voice', 'outbound', country_code, null, null, null,
            timezone('UTC', utc_hour), timezone('UTC', utc_hour + interval 1 hour)
        ) as alert_key,
        'short_call_burst' as rule,
        case when observed >= threshold('short_call_burst', 'critical_short_calls') then 'critical' else 'warning' end
            as severity,
        'voice' as product,
        'outbound' as direction,
        country_code,
        null::varchar as connection_id,
        null::varchar as connection_name,
        null::varchar as carrier,
        null::varchar as currency,
        timezone('UTC', utc_hour) as window_start,
        timezone('UTC', utc_hour + interval 1 hour) as window_end,
        observed,
        baseline,
        threshold,
        printf('%,d', observed::bigint) || ' outbound calls to ' || country_code || ' lasted 6 seconds or less in the hour from '
            || strftime(utc_hour, '%Y-%m-%d %H:00') || ' UTC (of ' || printf('%,d', calls::bigint) || ' calls), against a usual '
            || printf('%.0f', baseline) || ' (median of that hour over ' || len(history)
            || ' days); look for traffic pumping or wangiri callbacks and block the numbers called.' as message,
    from scored
    where observed > threshold
)

select * from final
