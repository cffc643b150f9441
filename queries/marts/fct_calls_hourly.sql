-- fct_calls_hourly: one row per account, report date, local hour of day and direction with calls; key: account, report_date, report_hour, direction
-- incremental: report_date
select
    account,
    report_date,
    report_hour,
    direction,
    count(*) as calls,
    count(*) filter (where is_answered) as answered_calls,
from int_calls_dated
group by all
