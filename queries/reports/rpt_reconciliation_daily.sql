-- rpt_reconciliation_daily: one row per account, UTC date, product and currency known to the lake, the API's usage or the quarantine; key: account, utc_date, product, currency
-- The pipeline's own totals against `/v2/reports/usage`, per UTC day (the API dates usage in UTC):
-- the rows of marts/fct_reconciliation_daily.sql, which says what each status means and which the
-- alert rule reads too.
with final as (
    select * from fct_reconciliation_daily
)

select * from final
order by account, utc_date, product, currency
