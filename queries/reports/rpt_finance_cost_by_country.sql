-- rpt_finance_cost_by_country: one row per account, report month, currency and country bucket (the account's top 10 countries by cost, then the rest as one row); key: account, month, currency, country_rank
-- incremental: month
-- country_code is the remote party's country (the destination of outbound calls and messages,
-- the origin of inbound ones); calls and messages together. The rest: country_code null,
-- country_label 'Other (N countries)', country_rank 11.
with calls as (
    select * from fct_calls_daily
    where report_date >= recomputed_month_start()
),

messages as (
    select * from fct_messages_daily
    where report_date >= recomputed_month_start()
),

usage as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        currency,
        country_code,
        calls as records,
        calls,
        billed_duration_secs,
        0 as parts,
        cost,
    from calls
    union all
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        currency,
        country_code,
        messages as records,
        0 as calls,
        0 as billed_duration_secs,
        parts,
        cost,
    from messages
),

by_country as (
    select
        account,
        month,
        currency,
        country_code,
        sum(records) as records,
        sum(calls) as calls,
        sum(billed_duration_secs) as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
        row_number() over (partition by account, month, currency order by sum(cost) desc, country_code) as cost_rank,
    from usage
    group by account, month, currency, country_code
),

bucketed as (
    select
        account,
        month,
        currency,
        least(cost_rank, 11) as country_rank,
        case when cost_rank <= 10 then country_code end as country_code,
        records,
        calls,
        billed_duration_secs,
        parts,
        cost,
    from by_country
),

final as (
    select
        account,
        month,
        currency,
        country_rank,
        -- one country per top rank; null for the rest
        max(country_code) as country_code,
        case
            when country_rank <= 10 then max(country_code)
            else 'Other (' || counted(count(*), 'country', 'countries') || ')'
        end as country_label,
        sum(records)::bigint as records,
        -- a country of messages alone has no calls: its billed minutes do not apply, rather than being zero
        sum(calls)::bigint as calls,
        sum(billed_duration_secs)::bigint as billed_duration_secs,
        round(sum(billed_duration_secs) / 60, 1)::decimal(18, 1) as billed_minutes,
        sum(parts)::bigint as parts,
        sum(cost)::decimal(38, 9) as cost,
    from bucketed
    group by account, month, currency, country_rank
)

select * from final
order by account, month, currency, country_rank
