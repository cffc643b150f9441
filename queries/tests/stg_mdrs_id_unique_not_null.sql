-- every message in stg_mdrs has an id, and no id appears twice
select id, count(*) as versions
from stg_mdrs
group by id
having count(*) > 1 or id is null
