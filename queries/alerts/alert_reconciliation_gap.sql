-- alert_reconciliation_gap: one row per account, UTC date, product and currency whose records differ from the API's usage totals with no quarantined record to explain it; key: account, product, currency, window_start (rpt_alerts derives alert_key from them)
-- Read from the reconciliation (marts/fct_reconciliation_daily.sql): status mismatch, missing_in_lake,
-- or missing_in_api on a day the API's usage already covers (usage may lag the records).
-- observed: the records' cost; baseline: the API's cost; threshold: [reconciliation_gap]
-- min_cost_difference (any difference in the count fires too). Severity: critical for a missing
-- day or a cost difference of critical_share of the API's cost or more, else warning.
with reconciliation as (
    select * from fct_reconciliation_daily
),

-- per account: each syncs its own usage
usage_covers as (
    select account, max(utc_date) filter (where api_records is not null) as last_usage_date,
    from reconciliation
    group by account
),

gaps as (
    select reconciliation.*
    from reconciliation
    join usage_covers on reconciliation.account = usage_covers.account
    where reconciliation.status in ('mismatch', 'missing_in_lake')
        or (reconciliation.status = 'missing_in_api' and reconciliation.utc_date <= usage_covers.last_usage_date)
),

fired as (
    select
        *,
        case product when 'calls' then 'voice' else null end as scope_product,
        case product when 'calls' then 'call' else 'message' end as record_noun,
        coalesce(pipeline_cost, 0)::double as observed,
        coalesce(api_cost, 0)::double as baseline,
        threshold('reconciliation_gap', 'min_cost_difference') as threshold,
        timezone('UTC', utc_date::timestamp) as window_start,
        timezone('UTC', (utc_date + 1)::timestamp) as window_end,
    from gaps
    where records_diff <> 0
        or abs(cost_diff) >= threshold('reconciliation_gap', 'min_cost_difference')
        or status <> 'mismatch'
)

select *
from alert_rows(
    'fired',
    rule_name := 'reconciliation_gap',
    severity_level := case
        when status <> 'mismatch' then 'critical'
        when abs(cost_diff) >= threshold('reconciliation_gap', 'critical_share') * abs(coalesce(api_cost, 0))
            then 'critical'
        else 'warning'
    end,
    scope_columns := struct_pack(product := scope_product, currency),
    alert_window := struct_pack(window_start, window_end),
    message_text := coalesce(case status
        when 'missing_in_lake' then 'The API reports ' || counted(api_records, record_noun) || ' (' || printf('%.2f %s', api_cost, currency)
            || ') on ' || strftime(utc_date, '%Y-%m-%d') || ' UTC but the lake holds none; re-sync that day.'
        when 'missing_in_api' then 'The lake holds ' || counted(pipeline_records, record_noun) || ' ('
            || printf('%.2f %s', pipeline_cost, currency) || ') on ' || strftime(utc_date, '%Y-%m-%d')
            || ' UTC that the API''s usage does not report; re-sync its usage, then ask support.'
        else case product when 'calls' then 'Calls' else 'Messages' end || ' on ' || strftime(utc_date, '%Y-%m-%d')
            || ' UTC differ from the API''s usage with no quarantined record to explain it: the lake holds '
            || counted(pipeline_records, record_noun) || ' (' || printf('%.2f %s', pipeline_cost, currency) || '), the API reports '
            || counted(api_records, record_noun) || ' (' || printf('%.2f %s', api_cost, currency) || '); re-sync that day.'
    end,
    -- A figure the API left out (null) must not blank the whole sentence.
    'Records on ' || strftime(utc_date, '%Y-%m-%d') || ' UTC differ from the API''s usage with no quarantined'
        || ' record to explain it; re-sync that day.')
)
