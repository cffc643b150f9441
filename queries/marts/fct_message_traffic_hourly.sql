-- fct_message_traffic_hourly: one row per account, UTC hour, report date and hour, direction, message type, country, currency and high-risk range with messages; key: account, utc_hour, report_date, report_hour, direction, message_type, country_code, currency, high_risk_range
-- incremental: report_date
-- What the alert rules need finer than a day (see fct_call_traffic_hourly); per carrier and for
-- delivery they read the daily facts. high_risk_range: the range of seeds/high_risk_destinations.csv
-- an outbound message's number is in, matched within its country (messages carry no calling code,
-- so non-geographic ranges match calls only), else ''.
with messages as (
    select * from int_messages_dated
),

ranges as (
    select
        country_code,
        '+' || calling_code || prefix as number_prefix,
    from seed_high_risk_destinations
    where country_code <> ''
),

flagged as (
    select
        messages.*,
        coalesce(ranges.number_prefix, '') as high_risk_range,
    from messages
    left join ranges
        on messages.country_code = ranges.country_code
        and messages.direction = 'outbound'
        and starts_with(messages.cld, ranges.number_prefix)
),

final as (
    select
        account,
        date_trunc('hour', utc_time(created_at)) as utc_hour,
        report_date,
        report_hour,
        direction,
        message_type,
        country_code,
        currency,
        high_risk_range,
        count(*) as messages,
        sum(cost) as cost,
    from flagged
    group by all
)

select * from final
