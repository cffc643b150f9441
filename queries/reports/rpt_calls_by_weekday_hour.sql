-- rpt_calls_by_weekday_hour: one row per account, report month, weekday and hour of day (all 168 cells of every month the account has calls); key: account, month, weekday, hour
-- incremental: month
-- weekday: ISO 1 = Monday .. 7 = Sunday; hour: 0..23, local to the reporting time zone.
with hourly as (
    select * from fct_calls_hourly
    where report_date >= recomputed_month_start()
),

months as (
    select distinct account, strftime(report_date, '%Y-%m') as month
    from hourly
),

grid as (
    select
        months.account,
        months.month,
        weekday.weekday,
        hour.hour,
    from months
    cross join range(1, 8) as weekday(weekday)
    cross join range(0, 24) as hour(hour)
),

counted as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        isodow(report_date) as weekday,
        report_hour as hour,
        sum(calls) as calls,
        sum(answered_calls) as answered_calls,
    from hourly
    group by all
),

final as (
    select
        account,
        month,
        weekday::integer as weekday,
        ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][weekday] as weekday_name,
        hour::integer as hour,
        coalesce(counted.calls, 0)::bigint as calls,
        coalesce(counted.answered_calls, 0)::bigint as answered_calls,
    from grid
    left join counted using (account, month, weekday, hour)
)

select * from final
order by account, month, weekday, hour
