-- stg_mdr_repeats: one row per message created at an instant where the lake holds some id more than once, its latest version; key: id
-- materialized: table
-- Normally empty (see stg_repeated_instants); stg_mdrs swaps these rows in for their instants.
-- The latest re-rating wins; cost breaks an exact tie so the pick never depends on file order.
select lake_mdrs.*
from lake_mdrs
semi join stg_repeated_instants
    on lake_mdrs.created_at = stg_repeated_instants.created_at and stg_repeated_instants.kind = 'mdrs'
qualify row_number() over (partition by id order by updated_at desc, cost desc) = 1
