-- stg_cdrs: one row per call leg, its latest version in the lake; key: id
-- The lake's columns, names and types unchanged (the lake_cdrs source view casts them).
with source as (
    select * from lake_cdrs
),

-- each CTE is read once, so DuckDB inlines them and reads only the columns a query needs
repeated_instants as (
    select distinct created_at from stg_cdr_repeats
),

repeats as (
    select * from stg_cdr_repeats
),

single_versions as (
    select source.*
    from source
    anti join repeated_instants on source.created_at = repeated_instants.created_at
),

final as (
    select * from single_versions
    union all
    select * from repeats
)

select * from final
