-- fct_usage_daily: one row per account, UTC date, product and currency of the API's own usage totals; key: account, utc_date, product, currency
-- incremental: utc_date
-- What reconciliation compares the records with (fct_reconciliation_daily), kept day by
-- day: a usage partition holds its own UTC day's rows, so a build reads only the changed days'.
select
    account,
    usage_date as utc_date,
    product,
    currency,
    sum(records) as records,
    sum(billed_duration_secs) as billed_duration_secs,
    sum(parts) as parts,
    sum(cost) as cost,
from stg_usage
group by all
