-- rpt_voice_quality_daily: one row per report date and direction with calls; key: report_date, direction
-- asr = answered / calls; acd_secs = mean talk seconds of answered calls; ner = calls not
-- failed by the network (SIP 5xx) / calls; short_call_share = answered calls of 6 talk seconds
-- or fewer / answered calls. Ratios are 0..1, null when their denominator is 0.
with calls as (
    select * from fct_calls_daily
),

daily as (
    select
        report_date,
        direction,
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
        report_date,
        direction,
        calls::bigint as calls,
        answered_calls::bigint as answered_calls,
        answered_calls / calls as asr,
        talk_secs / nullif(answered_calls, 0) as acd_secs,
        (calls - network_failures) / calls as ner,
        short_calls::bigint as short_calls,
        short_calls / nullif(answered_calls, 0) as short_call_share,
    from daily
)

select * from final
order by report_date, direction
