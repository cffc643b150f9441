-- stg_cdr_repeats: one row per call leg created at an instant where the lake holds some id more than once, its latest version; key: id
-- materialized: table
-- The sync keeps one version per id, so this is normally empty. Versions of one record share
-- created_at, so stg_cdrs can dedupe by replacing the rows of these few instants with this
-- table: an anti-join on a timestamp it reads anyway, not on every id. The repeated ids come
-- from the lake's id census; when it names none, DuckDB skips reading the lake here.
with source as not materialized (
    select * from lake_cdrs
),

repeated_hashes as (
    select unnest(repeated_id_hashes) as id_hash
    from stg_cdrs_id_census
),

repeated_instants as (
    -- a hash shared by two ids only adds an instant: the rows are told apart by id below
    select distinct source.created_at
    from source
    semi join repeated_hashes on hash(source.id) = repeated_hashes.id_hash
),

instant_rows as (
    select source.*
    from source
    semi join repeated_instants on source.created_at = repeated_instants.created_at
),

final as (
    select *
    from instant_rows
    -- the latest re-rating wins; cost breaks an exact tie so the pick never depends on file order
    qualify row_number() over (partition by id order by updated_at desc, cost desc) = 1
)

select * from final
