-- stg_repeated_instants: one row per record kind and created_at instant at which the lake holds some id more than once; key: kind, created_at
-- The sync keeps one version per id, so this is normally empty. Versions of one record share
-- created_at: stg_cdr_repeats / stg_mdr_repeats keep the latest version of the rows at these
-- instants, and stg_cdrs / stg_mdrs swap those few rows in by an anti-join on a timestamp they
-- read anyway, instead of a window over every record. A view: each repeats model reads its own
-- kind, so DuckDB reads only that kind's lake, and skips the second read when no id repeats.
with ids as not materialized (
    select 'cdrs' as kind, id, created_at from lake_cdrs
    union all
    select 'mdrs' as kind, id, created_at from lake_mdrs
),

repeated_ids as (
    -- grouped by 8-byte hashes, cheaper than the id strings: a collision only adds an instant
    -- (the repeats models tell its rows apart by id), it never hides a repeat
    select
        kind,
        hash(id) as id_hash,
    from ids
    where id is not null
    group by all
    having count(*) > 1
),

final as (
    -- an inner join, not a semi join, so that the reader's filter on kind reaches both sides
    select distinct
        ids.kind,
        ids.created_at,
    from ids
    inner join repeated_ids on ids.kind = repeated_ids.kind and hash(ids.id) = repeated_ids.id_hash
)

select * from final
