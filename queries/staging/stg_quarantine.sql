-- stg_quarantine: one row per record the sync quarantined, its latest sighting; key: account, kind, record_key
-- materialized: table
-- The malformed records `pipelines.land.quarantine` set aside (JSON lines under quarantine/):
-- the API's usage counts them, the lake rightly does not, so reconciliation reads them back.
-- Every re-sync of a window appends its malformed records again: a record is one row per
-- account (the quarantine folder it was set aside in), keyed by its id when it has one (so a re-rated version replaces the older one) and by its raw text
-- when it has none: `quarantine_record_key`, the build's macro, which `cdr status` counts by too.
-- utc_date is the UTC date of the slice it came in (slices never cross a UTC
-- midnight), because the record's own created_at may be the malformed field. Its other fields
-- are read from the raw JSON where they read exactly, else null, never rounded or guessed:
-- integers are plain digits, cost a decimal (exponent form allowed) of at most 9 decimals.
-- is_in_lake: the lake holds a record of its id on its day, a later version that read well;
-- reconciliation counts it there, not here.
with source as (
    select * from lake_quarantine
),

extracted as (
    select
        account,
        kind,
        run_id,
        seen_at,
        slice_start,
        reason,
        raw_json,
        json_valid(raw_json) as is_json,
        quarantine_record_id(raw_json) as record_id,
        case when is_json and json_type(raw_json, '$.currency') = 'VARCHAR'
            then json_extract_string(raw_json, '$.currency') end as currency,
        case when is_json then json_extract_string(raw_json, '$.billed_duration_secs') end as billed_text,
        case when is_json then json_extract_string(raw_json, '$.parts') end as parts_text,
        case when is_json then json_extract_string(raw_json, '$.cost') end as cost_text,
        case when is_json then json_extract_string(raw_json, '$.updated_at') end as updated_text,
    from source
),

-- DuckDB's casts round ('60.5' -> 61, 12 decimals -> 9) and read '1_000': the text's form is
-- checked first, so a value that does not read exactly stays null
parsed as (
    select
        *,
        regexp_extract(
            cost_text, '^-?[0-9]+(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]{1,4}))?$', ['fraction', 'exponent']
        ) as cost_form,
        case when regexp_full_match(billed_text, '-?[0-9]{1,19}')
            then try_cast(billed_text as bigint) end as billed_duration_secs,
        case when regexp_full_match(parts_text, '-?[0-9]{1,19}')
            then try_cast(parts_text as bigint) end as parts,
    from extracted
),

typed as (
    select
        account,
        kind,
        case kind when 'cdrs' then 'calls' when 'mdrs' then 'messages' end as product,
        utc_time(slice_start)::date as utc_date,
        quarantine_record_key(raw_json) as record_key,
        record_id,
        currency,
        case when kind = 'cdrs' then billed_duration_secs end as billed_duration_secs,
        case when kind = 'mdrs' then parts end as parts,
        case
            when regexp_full_match(cost_text, '-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,4})?')
                and length(rtrim(cost_form.fraction, '0'))
                    - coalesce(try_cast(nullif(cost_form.exponent, '') as integer), 0) <= 9
                then try_cast(cost_text as decimal(38, 9))
        end as cost,
        reason,
        run_id,
        seen_at,
        slice_start,
        updated_text,
        raw_json,
    from parsed
),

final as (
    select
        account,
        kind,
        product,
        utc_date,
        record_key,
        record_id,
        currency,
        billed_duration_secs,
        parts,
        cost,
        reason,
        run_id as last_run_id,
        min(seen_at) over sightings as first_seen_at,
        seen_at as last_seen_at,
        count(*) over sightings as sightings,
        raw_json,
    from typed
    window sightings as (partition by account, kind, record_key)
    -- the latest sighting is the API's latest version; within one run the later updated_at;
    -- the run breaks a tie, so two builds of one lake pick the same sighting
    qualify row_number() over (
        partition by account, kind, record_key order by seen_at desc, updated_text desc nulls last, raw_json, run_id desc
    ) = 1
),

-- the quarantined ids the lake holds on the same day: the API has since sent a version that
-- read well, which the lake counts (looked up from the quarantine's side: it is the small one)
landed as (
    select 'cdrs' as kind, utc_date, id_hash from stg_cdrs_id_index
    where id_hash in (select hash(account, record_id) from final where kind = 'cdrs')
    union
    select 'mdrs' as kind, utc_date, id_hash from stg_mdrs_id_index
    where id_hash in (select hash(account, record_id) from final where kind = 'mdrs')
)

select
    final.* exclude (raw_json),
    landed.id_hash is not null as is_in_lake,
    final.raw_json,
from final
left join landed
    on landed.kind = final.kind
    and landed.utc_date = final.utc_date
    and landed.id_hash = hash(final.account, final.record_id)
