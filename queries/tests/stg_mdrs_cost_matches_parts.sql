-- a message's cost is exactly rate x parts, with parts >= 1
select
    id,
    rate,
    parts,
    cost,
from stg_mdrs
where parts is null
    or parts < 1
    or cost is distinct from rate * parts
