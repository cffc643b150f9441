-- rpt_call_outcomes_by_country: one row per report month, country and call outcome (status, hangup cause, SIP code); key: month, country_code, status, hangup_cause, sip_response_code
-- share_of_calls: of all the country's calls that month (both directions).
with calls as (
    select * from fct_calls_daily
),

outcomes as (
    select
        strftime(report_date, '%Y-%m') as month,
        country_code,
        status,
        hangup_cause,
        sip_response_code,
        sum(calls) as calls,
    from calls
    group by all
),

final as (
    select
        month,
        country_code,
        status,
        hangup_cause,
        sip_response_code,
        calls::bigint as calls,
        calls / sum(calls) over (partition by month, country_code) as share_of_calls,
    from outcomes
)

select * from final
order by month, country_code, calls desc, status, hangup_cause, sip_response_code
