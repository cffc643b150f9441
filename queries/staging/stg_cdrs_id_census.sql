-- stg_cdrs_id_census: one row for the whole lake: its call legs, their distinct ids and the id hashes it holds more than once; key: none (a single row)
-- materialized: table
-- The one grouping of every id in the lake, read by two models: the dedupe (stg_cdr_repeats
-- swaps in the latest version at the instants of the repeated hashes) and the unique-id test
-- (stg_cdrs must hold as many ids as the lake holds distinct ones, with the same sum of id
-- hashes). 8-byte hashes group much faster than the id strings; a collision only adds a hash
-- to re-check (the dedupe and the test compare the ids themselves), it never hides a repeat.
with source as (
    select id from lake_cdrs
),

hashes as (
    select
        hash(id) as id_hash,
        count(*) as versions,
        -- NULL ids hash alike: their group is told apart by holding no id
        count(id) > 0 as has_id,
    from source
    group by id_hash
),

final as (
    select
        coalesce(sum(versions), 0)::bigint as records,
        count(*) filter (where has_id)::bigint as distinct_id_hashes,
        coalesce(sum(id_hash) filter (where has_id), 0)::hugeint as id_hash_sum,
        coalesce(list(id_hash order by id_hash) filter (where versions > 1), []) as repeated_id_hashes,
    from hashes
)

select * from final
