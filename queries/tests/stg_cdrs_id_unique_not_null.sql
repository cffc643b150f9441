-- every call leg in stg_cdrs has an id, and no id appears twice
-- Ids are grouped by their 8-byte hash first, far cheaper than grouping the strings; only the ids
-- of a repeated hash are grouped exactly, so a hash collision never hides or invents a repeat.
with ids as not materialized (
    select id from stg_cdrs
),

repeated_hashes as (
    select hash(id) as id_hash
    from ids
    where id is not null
    group by id_hash
    having count(*) > 1
)

select
    id,
    count(*) as versions,
from ids
semi join repeated_hashes on hash(ids.id) = repeated_hashes.id_hash
group by id
having count(*) > 1
union all
select
    null as id,
    count(*) as versions,
from ids
where id is null
having count(*) > 0
