-- rpt_voice_quality_by_country: one row per report month, direction and country with calls; key: month, direction, country_code
-- The same measures as rpt_voice_quality_daily (asr, acd_secs, ner, short_call_share), by the
-- remote party's country.
with calls as (
    select * from fct_calls_daily
),

monthly as (
    select
        strftime(report_date, '%Y-%m') as month,
        direction,
        country_code,
        sum(calls) as calls,
        sum(answered_calls) as answered_calls,
        sum(talk_secs) as talk_secs,
        sum(network_failures) as network_failures,
        sum(short_calls) as short_calls,
    from calls
    group by all
),

final as (
    select
        month,
        direction,
        country_code,
        calls::bigint as calls,
        answered_calls::bigint as answered_calls,
        answered_calls / calls as asr,
        talk_secs / nullif(answered_calls, 0) as acd_secs,
        (calls - network_failures) / calls as ner,
        short_calls::bigint as short_calls,
        short_calls / nullif(answered_calls, 0) as short_call_share,
    from monthly
)

select * from final
order by month, direction, calls desc, country_code
