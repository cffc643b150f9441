-- rpt_voice_quality_daily: one row per account, report date and direction with calls; key: account, report_date, direction
-- incremental: report_date
-- asr, acd_secs, ner and short_call_share as macros/voice_quality.sql defines them: ratios 0..1,
-- null when their denominator is 0.
select *
from voice_quality('fct_calls_daily', struct_pack(account, report_date, direction))
order by account, report_date, direction
