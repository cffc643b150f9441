-- stg_cdr_repeats: one row per call leg created at an instant where the lake holds some id more than once, its latest version; key: id
-- materialized: table
-- Normally empty (see stg_repeated_instants); stg_cdrs swaps these rows in for their instants.
-- The latest re-rating wins; cost breaks an exact tie so the pick never depends on file order.
select lake_cdrs.*
from lake_cdrs
semi join stg_repeated_instants
    on lake_cdrs.created_at = stg_repeated_instants.created_at and stg_repeated_instants.kind = 'cdrs'
qualify row_number() over (partition by id order by updated_at desc, cost desc) = 1
