-- rpt_peak_concurrent_calls_daily: one row per report date on which calls were in progress; key: report_date
-- peak_concurrent_calls: the most call legs in progress at once that day; peak_at_local: the
-- first local time the peak was reached; calls_at_start: legs already in progress at midnight.
with concurrency as (
    select * from fct_call_concurrency_daily
),

final as (
    select
        report_date,
        peak_concurrent_calls::bigint as peak_concurrent_calls,
        peak_at_local,
        calls_at_start::bigint as calls_at_start,
    from concurrency
)

select * from final
order by report_date
