-- rpt_finance_monthly_statement: one row per report month, product, direction and currency; key: month, product, direction, currency
-- The finance statement, exactly as `cdr report finance` exports it. product: voice | sms | mms.
-- billed_duration_secs is 0 for messages, parts 0 for calls. month: 'YYYY-MM' (report time zone).
with calls as (
    select * from fct_calls_daily
),

messages as (
    select * from fct_messages_daily
),

voice as (
    select
        strftime(report_date, '%Y-%m') as month,
        'voice' as product,
        direction,
        currency,
        sum(calls) as records,
        sum(billed_duration_secs) as billed_duration_secs,
        0 as parts,
        sum(cost) as cost,
    from calls
    group by all
),

messaging as (
    select
        strftime(report_date, '%Y-%m') as month,
        message_type as product,
        direction,
        currency,
        sum(messages) as records,
        0 as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
    from messages
    group by all
),

final as (
    select
        month,
        product,
        direction,
        currency,
        records::bigint as records,
        billed_duration_secs::bigint as billed_duration_secs,
        parts::bigint as parts,
        cost::decimal(38, 9) as cost,
    from (
        select * from voice
        union all by name
        select * from messaging
    )
)

select * from final
order by month, product, direction, currency
