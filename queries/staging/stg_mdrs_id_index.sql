-- stg_mdrs_id_index: one row per message version in the lake (every account): its UTC day and (account, id) hash; key: none
-- materialized: table
-- incremental: utc_date
-- The census counts ids from it; an incremental build looks the changed days' ids up in it. See macros/id_hashes.sql.
select * from id_hashes('lake_mdrs')
