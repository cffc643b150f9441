-- rpt_alerts: one row per alert every rule raised over the warehouse's whole history, in every account; key: alert_key
-- The rules are the alert_* models (queries/alerts/, their thresholds in alerts/thresholds.toml);
-- `cdr alerts`, the nightly flow and the Alerts page read this table. Windows are UTC, end exclusive.
-- A rule sets only the scope columns of its grain (the union leaves the others null); its key is
-- derived here from the account, the rule, the scope and the window, so it always matches the row.
with alerts as (
    select * from alert_after_hours
    union all by name
    select * from alert_asr_drop
    union all by name
    select * from alert_cost_spike
    union all by name
    select * from alert_high_risk_destination
    union all by name
    select * from alert_message_failure_spike
    union all by name
    select * from alert_message_volume_spike
    union all by name
    select * from alert_new_destination
    union all by name
    select * from alert_reconciliation_gap
    union all by name
    select * from alert_short_call_burst
    union all by name
    select * from alert_sync_stale
),

final as (
    select
        account::varchar as account,
        alert_key(account, rule, product, direction, country_code, connection_id, carrier, currency, window_start, window_end)::varchar
            as alert_key,
        rule::varchar as rule,
        severity::varchar as severity,
        product::varchar as product,
        direction::varchar as direction,
        country_code::varchar as country_code,
        connection_id::varchar as connection_id,
        connection_name::varchar as connection_name,
        carrier::varchar as carrier,
        currency::varchar as currency,
        window_start::timestamptz as window_start,
        window_end::timestamptz as window_end,
        observed::double as observed,
        baseline::double as baseline,
        threshold::double as threshold,
        message::varchar as message,
    from alerts
)

select * from final
order by window_start, rule, account, alert_key
