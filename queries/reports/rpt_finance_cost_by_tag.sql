-- rpt_finance_cost_by_tag: one row per account, report month, tag, product and currency; key: account, month, tag, product, currency
-- incremental: month
-- A record with several tags counts under each, so rows must not be added up (the totals are
-- in rpt_finance_monthly_statement). tag is null for untagged records. product: voice | sms | mms.
with tags as (
    select * from fct_tags_daily
    where report_date >= recomputed_month_start()
),

final as (
    select *
    from monthly_totals(
        'tags',
        key_columns := struct_pack(tag, product, currency),
        totals := struct_pack(records := sum(records)::bigint, cost := sum(cost)::decimal(38, 9))
    )
)

select * from final
order by account, month, currency, cost desc, tag nulls last, product
