-- stg_cdrs: one row per call leg, its latest version in the lake; key: id
-- The lake's columns, names and types unchanged (the lake_cdrs source view casts them): every
-- row but those at the instants where an id repeats, which stg_cdr_repeats holds deduped.
select lake_cdrs.*
from lake_cdrs
anti join stg_cdr_repeats on lake_cdrs.created_at = stg_cdr_repeats.created_at
union all
select * from stg_cdr_repeats
