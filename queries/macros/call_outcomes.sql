-- call_outcomes(calls_table, scope_columns): one row per value of scope_columns and call outcome (status, hangup cause, SIP code), those columns then calls and share_of_calls; key: the fields of scope_columns, status, hangup_cause, sip_response_code
-- One definition of the outcome breakdown for every scope a report shows it over:
-- scope_columns is a struct of the scope's columns in order (a day; a month and country),
-- computed from calls_table (fct_calls_daily). share_of_calls: of all the scope's calls (both
-- directions).
create macro call_outcomes(calls_table, scope_columns) as table
with outcomes as (
    select
        scope_columns as scope,
        status,
        hangup_cause,
        sip_response_code,
        sum(calls) as calls,
    from query_table(calls_table)
    group by all
),

final as (
    select
        scope.*,
        status,
        hangup_cause,
        sip_response_code,
        calls::bigint as calls,
        calls / sum(calls) over (partition by scope) as share_of_calls,
    from outcomes
)

select * from final
