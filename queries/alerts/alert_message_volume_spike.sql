-- alert_message_volume_spike: one row per report day and destination country whose outbound messages rose far above their usual (SMS pumping), especially with a collapsed delivery rate; key: alert_key
-- observed: the day's outbound messages to the country; baseline: the median of the same weekday
-- over the trailing [message_volume_spike] weeks (a day without any counting 0); threshold:
-- baseline + the larger of min_excess and z x spread (at least the Poisson spread). Fires above
-- it when the volume is also ratio x baseline or more, or the day's delivery rate fell by
-- delivery_drop or more below the usual. Severity: critical when the day's delivery rate is
-- critical_delivery or less, else warning.
with messages as (
    select * from fct_messages_daily
),

days as (
    select report_date, country_code, sum(messages)::double as messages,
        coalesce(sum(messages) filter (where message_is_delivered(status)), 0)::double as delivered,
    from messages
    where direction = 'outbound'
    group by all
),

history_start as (
    select min(report_date) as first_day from messages
),

weeks as (
    select range as weeks_back
    from range(1, 1000)
    where range <= threshold('message_volume_spike', 'weeks')
),

histories as (
    select
        candidates.report_date,
        candidates.country_code,
        any_value(candidates.messages) as observed,
        any_value(candidates.delivered / candidates.messages) as delivery,
        list(coalesce(past.messages, 0) order by weeks.weeks_back) as history,
        -- the usual delivery rate: over every message of those days
        coalesce(sum(past.delivered) / nullif(sum(past.messages), 0), 1) as usual_delivery,
    from days as candidates
    cross join weeks
    cross join history_start
    left join days as past
        on past.country_code = candidates.country_code
        and past.report_date = candidates.report_date - 7 * weeks.weeks_back::integer
    where candidates.messages >= threshold('message_volume_spike', 'min_excess')
        and candidates.report_date - 7 * weeks.weeks_back::integer >= history_start.first_day
    group by all
),

scored as (
    select
        *,
        baseline_median(history) as baseline,
        baseline_median(history) + greatest(
            threshold('message_volume_spike', 'min_excess'),
            threshold('message_volume_spike', 'z')
                * greatest(baseline_spread(history), sqrt(baseline_median(history)))
        ) as threshold,
    from histories
    where len(history) >= threshold('message_volume_spike', 'min_points')
),

final as (
    select
        alert_key(
            'message_volume_spike', null, 'outbound', country_code, null, null, null,
            report_day_start(report_date), report_day_start(report_date + 1)
        ) as alert_key,
        'message_volume_spike' as rule,
        case when delivery <= threshold('message_volume_spike', 'critical_delivery') then 'critical' else 'warning' end
            as severity,
        null::varchar as product,
        'outbound' as direction,
        country_code,
        null::varchar as connection_id,
        null::varchar as connection_name,
        null::varchar as carrier,
        null::varchar as currency,
        report_day_start(report_date) as window_start,
        report_day_start(report_date + 1) as window_end,
        observed,
        baseline,
        threshold,
        printf('%,d', observed::bigint) || ' outbound messages to ' || country_code || ' on ' || strftime(report_date, '%Y-%m-%d')
            || ', against a usual ' || printf('%,d', baseline::bigint) || ' (median of the same weekday over '
            || len(history) || ' weeks), ' || printf('%.0f%%', 100 * delivery) || ' delivered (usually '
            || printf('%.0f%%', 100 * usual_delivery) || '); look for SMS pumping: check the senders and '
            || 'the numbers messaged, and pause the traffic to ' || country_code || ' if it is not yours.' as message,
    from scored
    where observed > threshold
        and (
            observed >= baseline * threshold('message_volume_spike', 'ratio')
            or delivery <= usual_delivery - threshold('message_volume_spike', 'delivery_drop')
        )
)

select * from final
