-- fct_message_traffic_hourly: one row per account, UTC hour, report date and hour, direction, message type, country, currency and high-risk range with messages; key: account, utc_hour, report_date, report_hour, direction, message_type, country_code, currency, high_risk_range
-- incremental: report_date
-- What the alert rules need finer than a day (see fct_call_traffic_hourly); per carrier and for
-- delivery they read the daily facts. high_risk_range: the range of seeds/high_risk_destinations.csv
-- an outbound message's number is in, matched within its country (messages carry no calling code,
-- so non-geographic ranges match calls only), else ''.
select *
from traffic_hourly(
    'int_messages_dated', 'seed_high_risk_destinations', country_code, nullif(country_code, ''),
    struct_pack(direction, message_type, country_code, currency, high_risk_range),
    struct_pack(messages := count(*), cost := sum(cost))
)
