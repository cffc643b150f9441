-- stg_cdr_repeats: one row per call leg created at an instant where the lake holds some id more than once, its latest version; key: account, id
-- materialized: table
-- Normally empty (the sync keeps one version per id); stg_cdrs swaps these rows in at their
-- instants. See macros/latest_repeats.sql.
select * from latest_repeats('lake_cdrs', 'stg_cdrs_id_census')
