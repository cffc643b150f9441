-- rpt_call_outcomes_daily: one row per report date and call outcome (status, hangup cause, SIP code); key: report_date, status, hangup_cause, sip_response_code
-- share_of_calls: of all the day's calls (both directions).
with calls as (
    select * from fct_calls_daily
),

outcomes as (
    select
        report_date,
        status,
        hangup_cause,
        sip_response_code,
        sum(calls) as calls,
    from calls
    group by all
),

final as (
    select
        report_date,
        status,
        hangup_cause,
        sip_response_code,
        calls::bigint as calls,
        calls / sum(calls) over (partition by report_date) as share_of_calls,
    from outcomes
)

select * from final
order by report_date, calls desc, status, hangup_cause, sip_response_code
