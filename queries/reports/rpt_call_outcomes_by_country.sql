-- rpt_call_outcomes_by_country: one row per account, report month, country and call outcome (status, hangup cause, SIP code); key: account, month, country_code, status, hangup_cause, sip_response_code
-- incremental: month
-- share_of_calls: of all the account's calls to and from the country that month (both directions); see macros/call_outcomes.sql.
with calls as (
    select * from fct_calls_daily
    where report_date >= recomputed_month_start()
)

select *
from call_outcomes('calls', struct_pack(account, month := strftime(report_date, '%Y-%m'), country_code))
order by account, month, country_code, calls desc, status, hangup_cause, sip_response_code
