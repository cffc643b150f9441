-- rpt_voice_quality_by_country: one row per account, report month, direction and country with calls; key: account, month, direction, country_code
-- incremental: month
-- The same measures as rpt_voice_quality_daily (macros/voice_quality.sql), by the remote party's
-- country.
with calls as (
    select * from fct_calls_daily
    where report_date >= recomputed_month_start()
)

select *
from voice_quality('calls', struct_pack(account, month := strftime(report_date, '%Y-%m'), direction, country_code))
order by account, month, direction, calls desc, country_code
