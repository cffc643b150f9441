-- stg_mdrs: one row per message, its latest version in the lake; key: id
-- The lake's columns, names and types unchanged (the lake_mdrs source view casts them).
with source as (
    select * from lake_mdrs
),

repeats as (
    select * from stg_mdr_repeats
),

repeated_instants as (
    select distinct created_at from repeats
),

single_versions as (
    select source.*
    from source
    anti join repeated_instants on source.created_at = repeated_instants.created_at
),

final as (
    select * from single_versions
    union all by name
    select * from repeats
)

select * from final
