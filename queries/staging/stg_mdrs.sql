-- stg_mdrs: one row per message, its latest version in the lake; key: account, id
-- account (the lake folder it came from), then the lake's columns, names and types unchanged (the lake_mdrs source view casts them);
-- deduped as macros/latest_versions.sql says.
select * from latest_versions('lake_mdrs', 'stg_mdr_repeats')
