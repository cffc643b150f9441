-- fct_call_traffic_hourly: one row per account, UTC hour, report date and hour, direction, country, currency, premium-rate flag and high-risk range with calls; key: account, utc_hour, report_date, report_hour, direction, country_code, currency, is_premium, high_risk_range
-- incremental: report_date
-- What the alert rules need finer than a day: the call rules roll up from here (hours, days, same
-- weekdays) or from fct_calls_daily (per connection, and the answer ratios), never from the records. utc_hour: the UTC wall-clock hour the call
-- was created in. high_risk_range: the range of seeds/high_risk_destinations.csv an outbound
-- call's number is in (`+<calling code><prefix>`; ranges never nest, a data test checks), else ''.
-- a call matches the ranges of the calling code it carries
select *
from traffic_hourly(
    'int_calls_dated', 'seed_high_risk_destinations', country_calling_code, calling_code,
    struct_pack(direction, country_code, currency, is_premium := number_type = 'premium', high_risk_range),
    struct_pack(calls := count(*), short_calls := count(*) filter (where is_short_call), cost := sum(cost))
)
