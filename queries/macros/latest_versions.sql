-- latest_versions(source_table, repeats_table): one row per record, its latest version in the lake; key: account, id
-- The lake's rows, except at the instants where an id repeats: there, the latest versions
-- latest_repeats picked (versions of one record share created_at).
create macro latest_versions(source_table, repeats_table) as table
with source as (
    select * from query_table(source_table)
),

-- each CTE is read once, so DuckDB inlines them and reads only the columns a query needs
repeated_instants as (
    select distinct created_at from query_table(repeats_table)
),

repeats as (
    select * from query_table(repeats_table)
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
