-- alert_sync_stale: one row per account and dataset (calls, messages) holding records whose newest is older than [sync_stale] max_silence_hours at build time; key: account, product (rpt_alerts derives alert_key from them)
-- observed: hours from the end of the newest record's UTC hour to the build's clock (build_time());
-- baseline: 0; threshold: max_silence_hours. The window runs from that hour's end to the end of
-- the build's UTC day, so the alert keeps its key through a day's builds. Severity: critical at
-- critical_hours or more, else warning.
with newest as (
    select account, if(records = 'calls', 'voice', null) as product, records,
        max(last_utc_hour) + interval 1 hour as silent_since,
    from fct_traffic_days
    group by account, records
),

fired as (
    select
        *,
        timezone('UTC', silent_since) as window_start,
        date_trunc('day', utc_time(build_time())) + interval 1 day as day_end,
        (epoch(build_time()) - epoch(timezone('UTC', silent_since))) / 3600 as observed,
        0.0 as baseline,
        threshold('sync_stale', 'max_silence_hours') as threshold,
    from newest
    where silent_since is not null
),

stale as (
    select * from fired where observed >= threshold
)

select *
from alert_rows(
    'stale',
    rule_name := 'sync_stale',
    severity_level := case when observed >= threshold('sync_stale', 'critical_hours') then 'critical' else 'warning' end,
    scope_columns := struct_pack(product),
    alert_window := struct_pack(window_start, window_end := timezone('UTC', day_end)),
    message_text := 'No ' || records || ' newer than ' || strftime(silent_since, '%Y-%m-%d %H:00') || ' UTC in the lake, '
        -- a silence of days counted in days, not hundreds of hours
        || case when observed < 48 then counted(observed, 'hour') else counted(floor(observed / 24), 'day') end
        || ' before this build; check that the sync runs '
        || '(cdr status) and that the account still sends traffic.'
)
