-- stg_cdrs: one row per call leg, its latest version in the lake; key: account, id
-- account (the lake folder it came from), then the lake's columns, names and types unchanged (the lake_cdrs source view casts them);
-- deduped as macros/latest_versions.sql says.
select * from latest_versions('lake_cdrs', 'stg_cdr_repeats')
