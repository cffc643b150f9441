-- rpt_finance_monthly_statement: one row per account, report month, product, direction and currency; key: account, month, product, direction, currency
-- incremental: month
-- The finance statement of each account, exactly as `cdr report finance` exports it. product: voice | sms | mms.
-- billed_duration_secs is 0 for messages, parts 0 for calls. month: 'YYYY-MM' (report time zone).
with calls as (
    select * from fct_calls_daily
    where report_date >= recomputed_month_start()
),

messages as (
    select * from fct_messages_daily
    where report_date >= recomputed_month_start()
),

records as (
    select account, report_date, 'voice' as product, direction, currency, calls as records, billed_duration_secs, 0 as parts, cost
    from calls
    union all
    select account, report_date, message_type, direction, currency, messages, 0, parts, cost
    from messages
),

final as (
    select *
    from monthly_totals(
        'records',
        key_columns := struct_pack(product, direction, currency),
        totals := struct_pack(
            records := sum(records)::bigint,
            billed_duration_secs := sum(billed_duration_secs)::bigint,
            parts := sum(parts)::bigint,
            cost := sum(cost)::decimal(38, 9)
        )
    )
)

select * from final
order by account, month, product, direction, currency
