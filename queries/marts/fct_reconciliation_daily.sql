-- fct_reconciliation_daily: one row per account, UTC date, product and currency known to the lake, the API's usage or the quarantine; key: account, utc_date, product, currency
-- Each account's own totals against its `/v2/reports/usage`. Always UTC days (the API dates usage
-- in UTC), whatever the reporting time zone. product: calls | messages (the API's products).
-- The API counts the malformed records the sync quarantined; the lake does not. status:
-- match (pipeline = API on every metric) | explained_by_quarantine (pipeline + quarantined =
-- API on every metric) | mismatch | missing_in_api (records, no usage row) | missing_in_lake
-- (usage, no records). A quarantined total is null when some record's value could not be read
-- (so it explains nothing); a record whose currency cannot be read joins no row, nor one whose
-- id the lake now holds (the API has since sent it in a form that read well: counted there).
-- Computed once a build, for the report (rpt_reconciliation_daily) and the alert rule (alert_reconciliation_gap).
with calls as (
    select * from fct_calls_daily
),

messages as (
    select * from fct_messages_daily
),

quarantine as (
    select * from stg_quarantine
),

pipeline as (
    select
        account,
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
        account,
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

-- the API's usage, at this grain already (fct_usage_daily)
api as (
    select * from fct_usage_daily
),

quarantined as (
    select
        account,
        utc_date,
        product,
        currency,
        count(*) as records,
        -- a total only when every record's value was read: a partial sum would explain wrongly
        case when count(billed_duration_secs) = count(*) then sum(billed_duration_secs) end as billed_duration_secs,
        case when count(parts) = count(*) then sum(parts) end as parts,
        case when count(cost) = count(*) then sum(cost) end as cost,
    from quarantine
    where product is not null and currency is not null and not is_in_lake
    group by all
),

keys as (
    select account, utc_date, product, currency from pipeline
    union
    select account, utc_date, product, currency from api
    union
    select account, utc_date, product, currency from quarantined
),

joined as (
    select
        keys.account,
        keys.utc_date,
        keys.product,
        keys.currency,
        pipeline.utc_date is not null as in_lake,
        api.utc_date is not null as in_api,
        coalesce(quarantined.records, 0) as quarantined_records,
        -- each product's own metric: billed seconds for calls, parts for messages (0 with none quarantined)
        case when keys.product = 'calls' then
            case when quarantined.utc_date is null then 0 else quarantined.billed_duration_secs end
        end as quarantined_billed_duration_secs,
        case when keys.product = 'messages' then
            case when quarantined.utc_date is null then 0 else quarantined.parts end
        end as quarantined_parts,
        case when quarantined.utc_date is null then 0 else quarantined.cost end as quarantined_cost,
        pipeline.records as pipeline_records,
        api.records as api_records,
        pipeline.billed_duration_secs as pipeline_billed_duration_secs,
        api.billed_duration_secs as api_billed_duration_secs,
        pipeline.parts as pipeline_parts,
        api.parts as api_parts,
        pipeline.cost as pipeline_cost,
        api.cost as api_cost,
    from keys
    left join pipeline
        on keys.account = pipeline.account
        and keys.utc_date = pipeline.utc_date
        and keys.product = pipeline.product
        and keys.currency is not distinct from pipeline.currency
    left join api
        on keys.account = api.account
        and keys.utc_date = api.utc_date
        and keys.product = api.product
        and keys.currency is not distinct from api.currency
    left join quarantined
        on keys.account = quarantined.account
        and keys.utc_date = quarantined.utc_date
        and keys.product = quarantined.product
        and keys.currency = quarantined.currency
),

final as (
    select
        account,
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
        quarantined_records::bigint as quarantined_records,
        quarantined_billed_duration_secs::bigint as quarantined_billed_duration_secs,
        quarantined_parts::bigint as quarantined_parts,
        quarantined_cost::decimal(38, 9) as quarantined_cost,
        case
            when not in_api then 'missing_in_api'
            when in_lake
                and pipeline_records = api_records
                and pipeline_billed_duration_secs is not distinct from api_billed_duration_secs
                and pipeline_parts is not distinct from api_parts
                and pipeline_cost = api_cost
                then 'match'
            -- the metric a product does not have is null on every side, hence `not distinct`
            when quarantined_records > 0
                and coalesce(pipeline_records, 0) + quarantined_records = api_records
                and coalesce(pipeline_billed_duration_secs, 0) + quarantined_billed_duration_secs
                    is not distinct from api_billed_duration_secs
                and coalesce(pipeline_parts, 0) + quarantined_parts is not distinct from api_parts
                and coalesce(pipeline_cost, 0) + quarantined_cost = api_cost
                then 'explained_by_quarantine'
            -- a usage row counting nothing agrees with a lake holding nothing
            when not in_lake and api_records = 0 and coalesce(api_cost, 0) = 0 then 'match'
            when not in_lake then 'missing_in_lake'
            else 'mismatch'
        end as status,
    from joined
)

select * from final
