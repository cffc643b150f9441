-- every call leg in stg_cdrs has an id, and no id appears twice
select id, count(*) as versions
from stg_cdrs
group by id
having count(*) > 1 or id is null
