-- the API's usage holds one row per account, UTC date, product, country, direction and currency
-- incremental: utc_date
-- A usage partition holds its own UTC day's rows, so a key repeats only within a day: an
-- incremental build checks the changed days' rows alone.
select
    account,
    usage_date,
    product,
    country_code,
    direction,
    currency,
    count(*) as rows,
from stg_usage
group by all
having count(*) > 1
    or account is null
    or usage_date is null
    or product is null or product not in ('calls', 'messages')
