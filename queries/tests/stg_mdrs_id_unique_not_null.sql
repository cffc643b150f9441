-- every message in stg_mdrs has an id, and no id appears twice in one account
-- incremental: utc_date
-- It holds day by day (an incremental build first checks that no changed day shares an id with
-- another day), so an incremental build runs it over the changed days alone.
-- Checked against the lake's id census without grouping the ids again: macros/missing_or_repeated_ids.sql.
select * from missing_or_repeated_ids('stg_mdrs', 'stg_mdrs_id_census')
