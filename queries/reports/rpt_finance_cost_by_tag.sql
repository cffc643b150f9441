-- rpt_finance_cost_by_tag: one row per report month, tag, product and currency; key: month, tag, product, currency
-- A record with several tags counts under each, so rows must not be added up (the totals are
-- in rpt_finance_monthly_statement). tag is null for untagged records. product: voice | sms | mms.
with call_tags as (
    select * from fct_call_tags_daily
),

message_tags as (
    select * from fct_message_tags_daily
),

tagged as (
    select
        strftime(report_date, '%Y-%m') as month,
        tag,
        'voice' as product,
        currency,
        calls as records,
        cost,
    from call_tags
    union all
    select
        strftime(report_date, '%Y-%m') as month,
        tag,
        message_type as product,
        currency,
        messages as records,
        cost,
    from message_tags
),

final as (
    select
        month,
        tag,
        product,
        currency,
        sum(records)::bigint as records,
        sum(cost)::decimal(38, 9) as cost,
    from tagged
    group by all
)

select * from final
order by month, currency, cost desc, tag nulls last, product
