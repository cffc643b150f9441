-- every message in stg_mdrs has an id, and no id appears twice
-- Repeats are looked for among the ids whose 8-byte hash repeats: the same answer as
-- grouping all the id strings, at a fraction of the cost.
with messages as not materialized (
    select id from stg_mdrs
),

repeated_hashes as (
    select hash(id) as id_hash
    from messages
    group by id_hash
    having count(*) > 1
),

candidates as (
    select messages.id
    from messages
    semi join repeated_hashes on hash(messages.id) = repeated_hashes.id_hash
    where messages.id is not null
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
from messages
where id is null
having count(*) > 0
