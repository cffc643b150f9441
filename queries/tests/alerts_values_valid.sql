-- rpt_alerts: an account, known rules and severities, windows that end after they start, a message, and the scope columns each rule's grain sets (and only those); a product of voice, sms or mms, or null for messages of every type (the pages say "messages")
with alerts as (
    select * from rpt_alerts
),

checked as (
    select
        *,
        case rule
            when 'cost_spike' then product is not null and currency is not null and direction is null
                and connection_id is null and carrier is null and (country_code is null or product = 'voice')
            when 'high_risk_destination' then product is not null and direction = 'outbound' and currency is not null
                and connection_id is null and carrier is null
            when 'new_destination' then product is not null and direction = 'outbound' and country_code is not null
                and connection_id is null and carrier is null and currency is null
            when 'short_call_burst' then product = 'voice' and direction = 'outbound' and country_code is not null
                and connection_id is null and carrier is null
            when 'asr_drop' then product = 'voice' and direction = 'outbound'
                and (country_code is null) <> (connection_id is null) and carrier is null
            when 'message_failure_spike' then product is null and direction = 'outbound'
                and (country_code is null) <> (carrier is null) and connection_id is null
            when 'message_volume_spike' then direction = 'outbound' and country_code is not null
                and connection_id is null and carrier is null
            when 'after_hours' then product is not null and direction = 'outbound' and currency is not null
                and country_code is null and connection_id is null and carrier is null
            when 'sync_stale' then direction is null and country_code is null and connection_id is null and carrier is null
            when 'reconciliation_gap' then currency is not null and country_code is null and connection_id is null
                and carrier is null
            else false
        end as is_scope_consistent,
    from alerts
)

select account, alert_key, rule, severity, window_start, window_end, message,
from checked
where account is null
    or severity is null
    or severity not in ('info', 'warning', 'critical')
    or window_start is null
    or window_end is null
    or window_end <= window_start
    or message is null
    or message = ''
    or observed is null
    or not coalesce(is_scope_consistent, false)
    or product not in ('voice', 'sms', 'mms')
    or (connection_name is not null and connection_id is null)
