-- the API's usage holds one row per account, UTC date, product, country, direction and currency
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
