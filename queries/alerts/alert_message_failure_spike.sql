-- alert_message_failure_spike: one row per account, report day and carrier, or account, report day and destination country, whose outbound message failure share rose far above its usual; key: account, carrier, country_code, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- Failed: delivery_failed or gateway_rejected (macros/message_is_failed.sql). observed: the day's
-- failed share of outbound messages; baseline: the median daily share over the trailing
-- [message_failure_spike] days (days with min_history_messages or more); threshold: the higher of
-- baseline x ratio and baseline + z x spread (the larger of 1.4826 x MAD and the binomial spread
-- at the day's messages). Only with min_messages that day and min_points past days.
-- Severity: critical at a failure share of critical_share or more, else warning.
with by_carrier as (
    -- the days the windows recomputed look back on (every day in a full build)
    select * from fct_message_delivery_daily
    where report_date >= lookback_start(threshold('message_failure_spike', 'days'))
),

by_country as (
    select * from fct_messages_daily
    where report_date >= lookback_start(threshold('message_failure_spike', 'days'))
),

days as (
    select account, report_date, carrier, null::varchar as country_code,
        sum(messages)::double as messages, coalesce(sum(messages) filter (where message_is_failed(status)), 0)::double as failed,
    from by_carrier
    where direction = 'outbound'
    group by all
    union all
    select account, report_date, null::varchar as carrier, country_code,
        sum(messages)::double as messages, coalesce(sum(messages) filter (where message_is_failed(status)), 0)::double as failed,
    from by_country
    where direction = 'outbound'
    group by all
),

scored as (
    select
        *,
        failed / messages as observed,
        baseline_median(history) as baseline,
        spike_threshold(
            history, threshold('message_failure_spike', 'ratio'), threshold('message_failure_spike', 'z'),
            least_spread := sqrt(greatest(baseline_median(history), 1 / messages) * (1 - baseline_median(history)) / messages),
            minimum := null
        ) as threshold,
    from recent_history(
        'days',
        scope_key := struct_pack(account, carrier, country_code),
        window_period := report_date,
        window_value := failed / messages,
        is_judged := messages >= threshold('message_failure_spike', 'min_messages'),
        is_usable := messages >= threshold('message_failure_spike', 'min_history_messages'),
        days := threshold('message_failure_spike', 'days'),
        min_points := threshold('message_failure_spike', 'min_points')
    )
),

fired as (
    select * from scored where observed > threshold
)

select *
from alert_rows(
    'fired',
    rule_name := 'message_failure_spike',
    severity_level := case when observed >= threshold('message_failure_spike', 'critical_share') then 'critical' else 'warning' end,
    scope_columns := struct_pack(direction := 'outbound', country_code, carrier),
    alert_window := report_day_window(report_date),
    message_text := printf('%.1f%%', 100 * observed) || ' of outbound messages '
        || case when carrier is not null then 'via carrier ' || carrier else 'to ' || country_code end
        || ' failed on ' || strftime(report_date, '%Y-%m-%d') || ' (' || printf('%,d', failed::bigint) || ' of '
        || printf('%,d', messages::bigint) || '), against a usual ' || printf('%.1f%%', 100 * baseline)
        || ' (median of ' || counted(len(history), 'recent day') || '); check the error codes and the '
        || case when carrier is not null then 'carrier''s status' else 'senders and numbers' end || '.'
)
