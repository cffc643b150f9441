-- stg_cdrs_id_census: one row for the whole lake (every account): its call legs, their distinct ids and the (account, id) hashes it holds more than once; key: none (a single row)
-- materialized: table
-- Read by the dedupe (stg_cdr_repeats) and the unique-id test; see macros/id_census.sql.
select * from id_census('lake_cdrs')
