-- fct_call_traffic_hourly: one row per account, UTC hour, report date and hour, direction, country, currency, premium-rate flag and high-risk range with calls; key: account, utc_hour, report_date, report_hour, direction, country_code, currency, is_premium, high_risk_range
-- incremental: report_date
-- What the alert rules need finer than a day: the call rules roll up from here (hours, days, same
-- weekdays) or from fct_calls_daily (per connection, and the answer ratios), never from the records. utc_hour: the UTC wall-clock hour the call
-- was created in. high_risk_range: the range of seeds/high_risk_destinations.csv an outbound
-- call's number is in (`+<calling code><prefix>`; ranges never nest, a data test checks), else ''.
with calls as (
    select * from int_calls_dated
),

ranges as (
    select
        calling_code,
        '+' || calling_code || prefix as number_prefix,
    from seed_high_risk_destinations
),

flagged as (
    select
        calls.*,
        coalesce(ranges.number_prefix, '') as high_risk_range,
    from calls
    -- an equality join on the calling code the record carries, then the prefix test for the few
    -- calls to a listed code: never a test of every call against every range
    left join ranges
        on calls.country_calling_code = ranges.calling_code
        and calls.direction = 'outbound'
        and starts_with(calls.cld, ranges.number_prefix)
),

final as (
    select
        account,
        date_trunc('hour', utc_time(created_at)) as utc_hour,
        report_date,
        report_hour,
        direction,
        country_code,
        currency,
        number_type = 'premium' as is_premium,
        high_risk_range,
        count(*) as calls,
        count(*) filter (where is_short_call) as short_calls,
        sum(cost) as cost,
    from flagged
    group by all
)

select * from final
