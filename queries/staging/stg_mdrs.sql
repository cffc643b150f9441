-- stg_mdrs: one row per message, its latest version in the lake; key: id
-- The lake's columns, names and types unchanged (the lake_mdrs source view casts them): every
-- row but those at the instants where an id repeats, which stg_mdr_repeats holds deduped.
select lake_mdrs.*
from lake_mdrs
anti join stg_mdr_repeats on lake_mdrs.created_at = stg_mdr_repeats.created_at
union all
select * from stg_mdr_repeats
