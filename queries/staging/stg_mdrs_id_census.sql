-- stg_mdrs_id_census: one row for the whole lake (every account): its messages, their distinct ids and the (account, id) hashes it holds more than once; key: none (a single row)
-- materialized: table
-- Read by the dedupe (stg_mdr_repeats) and the unique-id test; see macros/id_census.sql.
select * from id_census('lake_mdrs')
