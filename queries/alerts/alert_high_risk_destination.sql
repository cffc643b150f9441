-- alert_high_risk_destination: one row per account, report day, product, destination country and currency with outbound traffic to a listed high-risk range, or with calls to premium-rate numbers far above usual; key: account, product, country_code, currency, window_start (rpt_alerts derives alert_key from them)
-- incremental: window_end
-- Listed ranges: seeds/high_risk_destinations.csv (IRSF, premium-rate and satellite ranges, data
-- not code). observed: the day's calls (or messages) to listed ranges; threshold: [high_risk_destination]
-- min_calls / min_messages; baseline: 0 (no such traffic is normal). Severity: critical when the
-- day's cost there reaches critical_cost, else warning.
-- Premium-rate numbers outside the list (number_type premium, any country) are normal in small
-- numbers: observed: the day's such calls; baseline: the median of the same weekday over
-- premium_weeks; fires above premium_ratio x baseline, baseline + premium_z x spread and
-- premium_min_calls, on a day the list did not fire for that country. Severity: warning.
with calls as not materialized (
    select * from fct_call_traffic_hourly
),

-- the days the windows recomputed look back on (every day in a full build): a listed range's day
-- is judged on its own
recent_calls as (
    select * from calls where report_date >= lookback_start(7 * threshold('high_risk_destination', 'premium_weeks'))
),

recent_messages as (
    select * from fct_message_traffic_hourly where report_date >= lookback_start(0)
),

ranges as (
    select
        '+' || calling_code || prefix as number_prefix,
        range_type,
    from seed_high_risk_destinations
),

listed_traffic as (
    select account, report_date, 'voice' as product, country_code, currency, high_risk_range, calls as records, cost,
    from recent_calls
    where high_risk_range <> ''
    union all
    select account, report_date, message_type as product, country_code, currency, high_risk_range, messages as records, cost,
    from recent_messages
    where high_risk_range <> ''
),

listed_days as (
    select
        listed_traffic.account,
        listed_traffic.report_date,
        listed_traffic.product,
        listed_traffic.country_code,
        listed_traffic.currency,
        sum(listed_traffic.records)::double as observed,
        sum(listed_traffic.cost)::double as cost,
        count(distinct listed_traffic.high_risk_range) as range_count,
        string_agg(distinct listed_traffic.high_risk_range || ' (' || ranges.range_type || ')', ', '
            order by listed_traffic.high_risk_range || ' (' || ranges.range_type || ')') as ranges,
    from listed_traffic
    left join ranges on listed_traffic.high_risk_range = ranges.number_prefix
    group by all
),

listed_fired as (
    select
        *,
        case when product = 'voice' then threshold('high_risk_destination', 'min_calls')
            else threshold('high_risk_destination', 'min_messages') end as threshold,
        0.0 as baseline,
        case when cost >= threshold('high_risk_destination', 'critical_cost') then 'critical' else 'warning' end
            as severity,
        counted(observed, 'outbound ' || case when product = 'voice' then 'call' else upper(product) || ' message' end)
            || ' to ' || counted(range_count, 'listed high-risk range') || ' of ' || coalesce(nullif(country_code, ''), 'no country')
            || ', ' || ranges || ', on ' || strftime(report_date, '%Y-%m-%d') || ' cost ' || printf('%.2f %s', cost, currency)
            || ', where none is usual; if that traffic is not yours, block the listed numbers'
            || case when product = 'voice' then ' on the connection' else ' on the messaging profile' end
            || ' and look for toll fraud.' as message,
    from listed_days
    where observed >= case when product = 'voice' then threshold('high_risk_destination', 'min_calls')
        else threshold('high_risk_destination', 'min_messages') end
),

-- each account's history begins with its own first call, in all history
account_starts as (
    select account, min(report_date) as first_day from fct_traffic_days where records = 'calls' group by account
),

premium_days as (
    select
        calls.account,
        account_starts.first_day,
        report_date,
        country_code,
        currency,
        sum(calls)::double as observed,
        sum(cost)::double as cost,
    from recent_calls as calls
    join account_starts on calls.account = account_starts.account
    where is_premium and high_risk_range = '' and direction = 'outbound'
    group by all
),

premium_fired as (
    select *
    from spike_windows(
        'premium_days',
        scope_key := struct_pack(account, country_code, currency),
        window_period := report_date,
        is_judged := observed >= threshold('high_risk_destination', 'premium_min_calls'),
        history_start := first_day,
        steps := threshold('high_risk_destination', 'premium_weeks'),
        step := interval 7 day,
        min_points := threshold('high_risk_destination', 'premium_min_points'),
        spike_ratio := threshold('high_risk_destination', 'premium_ratio'),
        spike_z := threshold('high_risk_destination', 'premium_z'),
        least_spread := sqrt(baseline_median(history)),
        minimum := threshold('high_risk_destination', 'premium_min_calls')
    ) as premium
    anti join listed_fired
        on listed_fired.product = 'voice'
        and listed_fired.account = premium.account
        and listed_fired.report_date = premium.report_date
        and listed_fired.country_code = premium.country_code
        and listed_fired.currency = premium.currency
),

fired as (
    select account, report_date, product, country_code, currency, observed, baseline, threshold, severity, message,
    from listed_fired
    union all
    select
        account,
        report_date,
        'voice' as product,
        country_code,
        currency,
        observed,
        baseline,
        threshold,
        'warning' as severity,
        counted(observed, 'outbound call') || ' to premium-rate numbers in ' || country_code
            || ' on ' || strftime(report_date, '%Y-%m-%d') || ' (cost ' || printf('%.2f %s', cost, currency) || '), '
            || case when baseline > 0 then printf('%.1f', observed / baseline) || 'x the usual ' else 'against a usual ' end
            || printf('%.0f', baseline) || ' (median of the same weekday over ' || counted(len(history), 'week')
            || '); check who called them and block premium-rate numbers if they are not yours.' as message,
    from premium_fired
)

select *
from alert_rows(
    'fired',
    rule_name := 'high_risk_destination',
    severity_level := severity,
    scope_columns := struct_pack(product, direction := 'outbound', country_code, currency),
    alert_window := report_day_window(report_date),
    message_text := message
)
