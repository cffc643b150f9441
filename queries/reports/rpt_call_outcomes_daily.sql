-- rpt_call_outcomes_daily: one row per account, report date and call outcome (status, hangup cause, SIP code); key: account, report_date, status, hangup_cause, sip_response_code
-- incremental: report_date
-- share_of_calls: of all the account's calls that day (both directions); see macros/call_outcomes.sql.
select *
from call_outcomes('fct_calls_daily', struct_pack(account, report_date))
order by account, report_date, calls desc, status, hangup_cause, sip_response_code
