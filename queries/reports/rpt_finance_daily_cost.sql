-- rpt_finance_daily_cost: one row per account, report date, product and currency with usage; key: account, report_date, product, currency
-- incremental: report_date
-- The daily cost trend (both directions). product: voice | sms | mms.
with calls as (
    select * from fct_calls_daily
),

messages as (
    select * from fct_messages_daily
),

voice as (
    select
        account,
        report_date,
        'voice' as product,
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
        account,
        report_date,
        message_type as product,
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
        account,
        report_date,
        product,
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
order by account, report_date, product, currency
