-- voice_quality(calls_table, key_columns): one row per value of key_columns with calls, those columns then the quality measures; key: the fields of key_columns
-- One definition of the voice quality measures for every grain a report shows them at:
-- key_columns is a struct of the report's key columns in order, computed from calls_table
-- (fct_calls_daily). asr = answered / calls; acd_secs = mean talk seconds of answered calls;
-- ner = calls not failed by the network (SIP 5xx) / calls; short_call_share = answered calls of
-- 6 talk seconds or fewer / answered calls. Ratios are 0..1, null when their denominator is 0.
create macro voice_quality(calls_table, key_columns) as table
with totals as (
    select
        key_columns as report_key,
        sum(calls) as calls,
        sum(answered_calls) as answered_calls,
        sum(talk_secs) as talk_secs,
        sum(network_failures) as network_failures,
        sum(short_calls) as short_calls,
    from query_table(calls_table)
    group by all
),

final as (
    select
        report_key.*,
        calls::bigint as calls,
        answered_calls::bigint as answered_calls,
        answered_calls / calls as asr,
        talk_secs / nullif(answered_calls, 0) as acd_secs,
        (calls - network_failures) / calls as ner,
        short_calls::bigint as short_calls,
        short_calls / nullif(answered_calls, 0) as short_call_share,
    from totals
)

select * from final
