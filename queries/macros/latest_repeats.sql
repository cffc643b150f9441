-- latest_repeats(source_table, census_table): one row per record created at an instant where the lake holds some id more than once, its latest version; key: account, id
-- The sync keeps one version per id, so this is normally empty. Versions of one record share
-- created_at, so latest_versions can dedupe by replacing the rows of these few instants with
-- these: an anti-join on a timestamp it reads anyway, not on every id. The repeated ids come
-- from the dataset's id census; when it names none, DuckDB skips reading the lake here.
create macro latest_repeats(source_table, census_table) as table
with source as not materialized (
    select * from query_table(source_table)
),

repeated_hashes as (
    select unnest(repeated_id_hashes) as id_hash
    from query_table(census_table)
),

repeated_instants as (
    -- a hash shared by two ids only adds an instant: the rows are told apart by account and id below
    select distinct source.created_at
    from source
    semi join repeated_hashes on hash(source.account, source.id) = repeated_hashes.id_hash
),

instant_rows as (
    select source.*
    from source
    semi join repeated_instants on source.created_at = repeated_instants.created_at
),

final as (
    select *
    from instant_rows
    -- the latest re-rating wins; cost, then the whole row, break an exact tie so the pick never
    -- depends on file order
    qualify row_number() over (partition by account, id order by updated_at desc, cost desc, instant_rows desc) = 1
)

select * from final
