-- alert_message_volume_spike: one row per account, report day and destination country whose outbound messages rose far above their usual (SMS pumping), especially with a collapsed delivery rate; key: account, country_code, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- observed: the day's outbound messages to the country; baseline: the median of the same weekday
-- over the trailing [message_volume_spike] weeks (a day without any counting 0); threshold:
-- baseline + the larger of min_excess and z x spread (at least the Poisson spread). Fires above
-- it when the volume is also ratio x baseline or more, or the day's delivery rate fell by
-- delivery_drop or more below the usual. Severity: critical when the day's delivery rate is
-- critical_delivery or less, else warning.
with messages as not materialized (
    select * from fct_messages_daily
),

-- each account's history begins with its own first message, in all history
account_starts as (
    select account, min(report_date) as first_day from messages group by account
),

days as (
    select messages.account, account_starts.first_day, report_date, country_code, sum(messages)::double as messages,
        coalesce(sum(messages) filter (where message_is_delivered(status)), 0)::double as delivered,
    from messages
    join account_starts on messages.account = account_starts.account
    -- the days the windows recomputed look back on (every day in a full build)
    where report_date >= lookback_start(7 * threshold('message_volume_spike', 'weeks'))
        and direction = 'outbound'
    group by all
),

histories as (
    -- history: each past day's messages and deliveries (0 and 0 on a day without any)
    select
        *,
        list_transform(history, lambda day: day.messages) as volumes,
        -- the usual delivery rate: over every message of those days
        coalesce(
            list_sum(list_transform(history, lambda day: day.delivered))
                / nullif(list_sum(list_transform(history, lambda day: day.messages)), 0),
            1
        ) as usual_delivery,
    from trailing_history(
        'days',
        scope_key := struct_pack(account, country_code),
        window_period := report_date,
        window_value := struct_pack(messages, delivered),
        missing := struct_pack(messages := 0, delivered := 0),
        is_judged := messages >= threshold('message_volume_spike', 'min_excess'),
        history_start := first_day,
        steps := threshold('message_volume_spike', 'weeks'),
        step := interval 7 day,
        min_points := threshold('message_volume_spike', 'min_points')
    )
),

scored as (
    select
        *,
        messages as observed,
        delivered / messages as delivery,
        baseline_median(volumes) as baseline,
        baseline_median(volumes) + greatest(
            threshold('message_volume_spike', 'min_excess'),
            threshold('message_volume_spike', 'z')
                * greatest(baseline_spread(volumes), sqrt(baseline_median(volumes)))
        ) as threshold,
    from histories
),

fired as (
    select *
    from scored
    where observed > threshold
        and (
            observed >= baseline * threshold('message_volume_spike', 'ratio')
            or delivery <= usual_delivery - threshold('message_volume_spike', 'delivery_drop')
        )
)

select *
from alert_rows(
    'fired',
    rule_name := 'message_volume_spike',
    severity_level := case when delivery <= threshold('message_volume_spike', 'critical_delivery') then 'critical' else 'warning' end,
    scope_columns := struct_pack(direction := 'outbound', country_code),
    alert_window := report_day_window(report_date),
    message_text := counted(observed, 'outbound message') || ' to ' || country_code || ' on ' || strftime(report_date, '%Y-%m-%d')
        || ', against a usual ' || printf('%,d', baseline::bigint) || ' (median of the same weekday over '
        || counted(len(volumes), 'week') || '), ' || printf('%.0f%%', 100 * delivery) || ' delivered (usually '
        || printf('%.0f%%', 100 * usual_delivery) || '); look for SMS pumping: check the senders and '
        || 'the numbers messaged, and pause the traffic to ' || country_code || ' if it is not yours.'
)
