-- rpt_finance_cost_by_tag: one row per account, report month, tag, product and currency; key: account, month, tag, product, currency
-- A record with several tags counts under each, so rows must not be added up (the totals are
-- in rpt_finance_monthly_statement). tag is null for untagged records. product: voice | sms | mms.
with tags as (
    select * from fct_tags_daily
),

final as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        tag,
        product,
        currency,
        sum(records)::bigint as records,
        sum(cost)::decimal(38, 9) as cost,
    from tags
    group by all
)

select * from final
order by account, month, currency, cost desc, tag nulls last, product
