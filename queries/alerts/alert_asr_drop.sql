-- alert_asr_drop: one row per account, report day and destination country, or account, report day and connection, whose outbound answer-seizure ratio (or network effectiveness ratio) fell far below its usual; key: account, country_code, connection_id, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- ASR: answered / calls. NER: calls the network did not fail (SIP 5xx) / calls. baseline: the
-- median of the daily ratio over the trailing [asr_drop] days (days with min_history_calls or
-- more); spread: the larger of 1.4826 x MAD and the binomial spread at the day's calls. ASR fires
-- below baseline x (1 - relative_drop) and baseline - z x spread; NER below baseline - ner_drop and
-- baseline - z x spread; only with min_calls calls that day and min_points past days. One row per
-- scope and day: observed/baseline/threshold are the ASR's when it fired, else the NER's.
-- Severity: critical when the ratio fell by critical_relative_drop of its baseline or more, else warning.
-- A connection is named as its calls of that day name it (macros/latest_name.sql), so a
-- judged day depends on its own facts alone, and a later rename leaves the alert as it was sent.
with calls as (
    select * from fct_calls_daily
),

-- one pass over the calls for both scopes; the scope a row is not grouped by is null
days as (
    select account, report_date, country_code, connection_id,
        sum(calls)::double as calls, sum(answered_calls)::double as answered, sum(network_failures)::double as failures,
        if(grouping(connection_id) = 0, latest_name(connection_name, last_updated_at), null) as connection_name,
    from calls
    where direction = 'outbound' and report_date >= lookback_start(threshold('asr_drop', 'days'))
    group by grouping sets ((account, report_date, country_code), (account, report_date, connection_id))
),

histories as (
    select
        *,
        answered / calls as asr,
        1 - failures / calls as ner,
        list_transform(history, lambda day: day.asr) as asr_history,
        list_transform(history, lambda day: day.ner) as ner_history,
    from recent_history(
        'days',
        scope_key := struct_pack(account, country_code, connection_id),
        window_period := report_date,
        window_value := struct_pack(asr := answered / calls, ner := 1 - failures / calls),
        is_judged := calls >= threshold('asr_drop', 'min_calls'),
        is_usable := calls >= threshold('asr_drop', 'min_history_calls'),
        days := threshold('asr_drop', 'days'),
        min_points := threshold('asr_drop', 'min_points')
    )
),

scored as (
    select
        *,
        baseline_median(asr_history) as asr_baseline,
        baseline_median(ner_history) as ner_baseline,
        drop_threshold(
            asr_history, baseline_median(asr_history) * (1 - threshold('asr_drop', 'relative_drop')), threshold('asr_drop', 'z'),
            least_spread := binomial_spread(baseline_median(asr_history), calls)
        ) as asr_threshold,
        drop_threshold(
            ner_history, baseline_median(ner_history) - threshold('asr_drop', 'ner_drop'), threshold('asr_drop', 'z'),
            least_spread := binomial_spread(baseline_median(ner_history), calls)
        ) as ner_threshold,
    from histories
),

fired as (
    select
        *,
        asr < asr_threshold as is_asr,
        case when asr < asr_threshold then asr else ner end as observed,
        case when asr < asr_threshold then asr_baseline else ner_baseline end as baseline,
        case when asr < asr_threshold then asr_threshold else ner_threshold end as threshold,
    from scored
    where asr < asr_threshold or ner < ner_threshold
)

select *
from alert_rows(
    'fired',
    rule_name := 'asr_drop',
    severity_level := case when observed <= baseline * (1 - threshold('asr_drop', 'critical_relative_drop'))
        then 'critical' else 'warning' end,
    scope_columns := struct_pack(product := 'voice', direction := 'outbound', country_code, connection_id, connection_name),
    alert_window := report_day_window(report_date),
    message_text := case when is_asr then 'Answer-seizure ratio' else 'Network effectiveness ratio' end
        || ' of outbound calls '
        || case when country_code is not null then 'to ' || country_code
            else 'over connection ' || coalesce(connection_name, connection_id) end
        || ' on ' || strftime(report_date, '%Y-%m-%d') || ' was ' || printf('%.1f%%', 100 * observed)
        || ' of ' || counted(calls, 'call') || ', against a usual ' || printf('%.1f%%', 100 * baseline)
        || ' (median of ' || counted(len(asr_history), 'recent day') || '); '
        || case when is_asr then 'check the route and the numbers dialled'
            else 'check the carrier for network failures (SIP 5xx)' end
        || '.'
)
