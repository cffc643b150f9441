-- rpt_message_parts: one row per account, report month, message type, encoding and parts per message; key: account, month, message_type, encoding, parts
-- incremental: month
-- The distribution of billed segments per message (both directions); share_of_messages is of
-- the account's messages that month of that type and encoding.
with delivery as (
    select * from fct_message_delivery_daily
    where report_date >= recomputed_month_start()
),

counted as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        message_type,
        encoding,
        parts,
        sum(messages) as messages,
    from delivery
    group by all
),

final as (
    select
        account,
        month,
        message_type,
        encoding,
        parts,
        messages::bigint as messages,
        messages / sum(messages) over (partition by account, month, message_type, encoding) as share_of_messages,
    from counted
)

select * from final
order by account, month, message_type, encoding, parts
