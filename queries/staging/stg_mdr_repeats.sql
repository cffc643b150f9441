-- stg_mdr_repeats: one row per message created at an instant where the lake holds some id more than once, its latest version; key: account, id
-- materialized: table
-- Normally empty (the sync keeps one version per id); stg_mdrs swaps these rows in at their
-- instants. See macros/latest_repeats.sql.
select * from latest_repeats('lake_mdrs', 'stg_mdrs_id_census')
