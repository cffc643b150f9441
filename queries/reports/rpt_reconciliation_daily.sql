-- rpt_reconciliation_daily: one row per UTC date, product and currency known to the lake or to the API's usage; key: utc_date, product, currency
-- The pipeline's own totals against `/v2/reports/usage`. Always UTC days (the API dates usage
-- in UTC), whatever the reporting time zone. product: calls | messages (the API's products).
-- status: match | mismatch | missing_in_api (records, no usage row) | missing_in_lake (usage, no records).
with calls as (
    select * from fct_calls_daily
),

messages as (
    select * from fct_messages_daily
),

usage as (
    select * from stg_usage
),

pipeline as (
    select
        utc_date,
        'calls' as product,
        currency,
        sum(calls) as records,
        sum(billed_duration_secs) as billed_duration_secs,
        null::hugeint as parts,
        sum(cost) as cost,
    from calls
    group by all
    union all
    select
        utc_date,
        'messages' as product,
        currency,
        sum(messages) as records,
        null::hugeint as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
    from messages
    group by all
),

api as (
    select
        usage_date as utc_date,
        product,
        currency,
        sum(records) as records,
        sum(billed_duration_secs) as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
    from usage
    group by all
),

joined as (
    select
        coalesce(pipeline.utc_date, api.utc_date) as utc_date,
        coalesce(pipeline.product, api.product) as product,
        coalesce(pipeline.currency, api.currency) as currency,
        pipeline.utc_date is not null as in_lake,
        api.utc_date is not null as in_api,
        pipeline.records as pipeline_records,
        api.records as api_records,
        pipeline.billed_duration_secs as pipeline_billed_duration_secs,
        api.billed_duration_secs as api_billed_duration_secs,
        pipeline.parts as pipeline_parts,
        api.parts as api_parts,
        pipeline.cost as pipeline_cost,
        api.cost as api_cost,
    from pipeline
    full outer join api
        on pipeline.utc_date = api.utc_date
        and pipeline.product = api.product
        and pipeline.currency = api.currency
),

final as (
    select
        utc_date,
        product,
        currency,
        pipeline_records::bigint as pipeline_records,
        api_records::bigint as api_records,
        (coalesce(pipeline_records, 0) - coalesce(api_records, 0))::bigint as records_diff,
        pipeline_billed_duration_secs::bigint as pipeline_billed_duration_secs,
        api_billed_duration_secs::bigint as api_billed_duration_secs,
        pipeline_parts::bigint as pipeline_parts,
        api_parts::bigint as api_parts,
        pipeline_cost::decimal(38, 9) as pipeline_cost,
        api_cost::decimal(38, 9) as api_cost,
        (coalesce(pipeline_cost, 0) - coalesce(api_cost, 0))::decimal(38, 9) as cost_diff,
        case
            when not in_api then 'missing_in_api'
            when not in_lake then 'missing_in_lake'
            when pipeline_records = api_records
                and pipeline_billed_duration_secs is not distinct from api_billed_duration_secs
                and pipeline_parts is not distinct from api_parts
                and pipeline_cost = api_cost
                then 'match'
            else 'mismatch'
        end as status,
    from joined
)

select * from final
order by utc_date, product, currency
