-- every call leg in stg_cdrs has an id, and no id appears twice
-- Repeats are looked for among the ids whose 8-byte hash repeats: the same answer as
-- grouping all the id strings, at a fraction of the cost.
with calls as not materialized (
    select id from stg_cdrs
),

repeated_hashes as (
    select hash(id) as id_hash
    from calls
    group by id_hash
    having count(*) > 1
),

candidates as (
    select calls.id
    from calls
    semi join repeated_hashes on hash(calls.id) = repeated_hashes.id_hash
    where calls.id is not null
)

select
    id,
    count(*) as versions,
from candidates
group by id
having count(*) > 1
union all
select
    null as id,
    count(*) as versions,
from calls
where id is null
having count(*) > 0
