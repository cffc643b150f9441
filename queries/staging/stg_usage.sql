-- stg_usage: one row per account, UTC date, product, country, direction and currency of the API's own usage totals; key: account, usage_date, product, country_code, direction, currency
-- `/v2/reports/usage` dates usage by UTC day, whatever the reporting time zone.
with calls as (
    select * from lake_usage_cdrs
),

messages as (
    select * from lake_usage_mdrs
),

unioned as (
    select * from calls
    union all
    select * from messages
),

final as (
    select
        account,
        date as usage_date,
        product,
        country_code,
        direction,
        currency,
        count as records,
        billed_duration_secs,
        parts,
        cost,
    from unioned
)

select * from final
