-- every message in stg_mdrs has an id, and no id appears twice in one account
-- Checked against the lake's id census without grouping the ids again: macros/missing_or_repeated_ids.sql.
select * from missing_or_repeated_ids('stg_mdrs', 'stg_mdrs_id_census')
