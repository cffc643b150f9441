-- fct_traffic_days: one row per account, report date, record type (calls, messages) and direction with records: the UTC hours its first and last records were created in; key: account, report_date, records, direction
-- incremental: report_date
-- Where each account's traffic begins and ends, for the alert rules that judge a window by its
-- account's first day or hour in all history, or by the newest record: they read these few rows
-- a day instead of all history of the hourly facts.
with calls as (
    select account, report_date, 'calls' as records, direction,
        min(utc_hour) as first_utc_hour,
        max(utc_hour) as last_utc_hour,
    from fct_call_traffic_hourly
    group by all
),

messages as (
    select account, report_date, 'messages' as records, direction,
        min(utc_hour) as first_utc_hour,
        max(utc_hour) as last_utc_hour,
    from fct_message_traffic_hourly
    group by all
),

final as (
    select * from calls
    union all
    select * from messages
)

select * from final
