-- rpt_reconciliation_daily: one row per account, UTC date, product and currency known to the lake, the API's usage or the quarantine; key: account, utc_date, product, currency
-- The pipeline's own totals against `/v2/reports/usage`. Always UTC days (the API dates usage
-- in UTC), whatever the reporting time zone. product: calls | messages (the API's products).
-- The API counts the malformed records the sync quarantined; the lake does not. status:
-- match (pipeline = API on every metric) | explained_by_quarantine (pipeline + quarantined =
-- API on every metric) | mismatch | missing_in_api (records, no usage row) | missing_in_lake
-- (usage, no records). A quarantined total is null when some record's value could not be read
-- (so it explains nothing); a record whose currency cannot be read joins no row.
-- The rows are the macro's (macros/reconciliation_daily.sql), which the alert rule reads too.
with final as (
    select * from reconciliation_daily('fct_calls_daily', 'fct_messages_daily', 'fct_usage_daily', 'stg_quarantine')
)

select * from final
order by account, utc_date, product, currency
