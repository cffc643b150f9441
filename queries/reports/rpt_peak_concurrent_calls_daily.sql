-- rpt_peak_concurrent_calls_daily: one row per account and report date on which its calls were in progress; key: account, report_date
-- peak_concurrent_calls: the most call legs in progress at once that day; peak_at_local: the
-- first local time the peak was reached; calls_at_start: legs already in progress at midnight.
with concurrency as (
    select * from fct_call_concurrency_daily
),

final as (
    select
        account,
        report_date,
        peak_concurrent_calls::bigint as peak_concurrent_calls,
        peak_at_local,
        calls_at_start::bigint as calls_at_start,
    from concurrency
)

select * from final
order by account, report_date
