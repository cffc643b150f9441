-- missing_or_repeated_ids(staged_table, census_table): one row per account and id the staged records hold more than once, and one (id null) counting those without an id
-- Proven from one read of the ids: none is missing, and the staged records hold exactly as many
-- as the lake holds distinct ones (its id census, the dedupe's grouping of the lake) with the
-- same sum of their 8-byte hashes (of account and id, as the census hashes them). A repeated id passes that only if ids of exactly the same
-- hash sum went missing at the same time (odds ~2^-64). Only when the proof fails are the ids
-- grouped to list the repeats; DuckDB skips that part when it holds.
create macro missing_or_repeated_ids(staged_table, census_table) as table
with staged as not materialized (
    select account, id from query_table(staged_table)
),

census as (
    -- the census counts each distinct id on one day only: its days add up to the lake's
    select
        coalesce(sum(distinct_id_hashes), 0) as distinct_id_hashes,
        coalesce(sum(id_hash_sum), 0) as id_hash_sum,
    from query_table(census_table)
),

fingerprint as (
    select
        count(id) as ids,
        count(*) - count(id) as missing_ids,
        coalesce(sum(hash(account, id)), 0) as id_hash_sum,
    from staged
),

unproven as (
    select fingerprint.*
    from fingerprint
    cross join census
    where fingerprint.ids <> census.distinct_id_hashes
        or fingerprint.id_hash_sum <> census.id_hash_sum
        or fingerprint.missing_ids > 0
),

repeated_hashes as (
    -- grouping 8-byte hashes is much cheaper than grouping the id strings; a hash collision
    -- only adds an id to re-check below, it never hides a repeat
    select hash(staged.account, staged.id) as id_hash
    from staged
    semi join unproven on true
    group by id_hash
    having count(*) > 1
),

candidates as (
    select staged.account, staged.id
    from staged
    semi join repeated_hashes on hash(staged.account, staged.id) = repeated_hashes.id_hash
    where staged.id is not null
)

select
    account,
    id,
    count(*) as versions,
from candidates
group by account, id
having count(*) > 1
union all
select
    null as account,
    null as id,
    missing_ids as versions,
from unproven
where missing_ids > 0
