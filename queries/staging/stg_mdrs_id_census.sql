-- stg_mdrs_id_census: one row per UTC day of the lake's messages (every account): its messages, their distinct ids and the (account, id) hashes the lake holds more than once that it holds; key: utc_date
-- materialized: table
-- incremental: utc_date
-- Read by the dedupe (stg_mdr_repeats) and the unique-id test; see macros/id_census.sql.
select * from id_census('stg_mdrs_id_index')
