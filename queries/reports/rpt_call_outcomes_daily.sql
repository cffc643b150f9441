-- rpt_call_outcomes_daily: one row per report date and call outcome (status, hangup cause, SIP code); key: report_date, status, hangup_cause, sip_response_code
-- share_of_calls: of all the day's calls (both directions); see macros/call_outcomes.sql.
select *
from call_outcomes('fct_calls_daily', struct_pack(report_date))
order by report_date, calls desc, status, hangup_cause, sip_response_code
