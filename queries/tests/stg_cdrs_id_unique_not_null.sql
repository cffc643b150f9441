-- every call leg in stg_cdrs has an id, and no id appears twice in one account
-- Checked against the lake's id census without grouping the ids again: macros/missing_or_repeated_ids.sql.
select * from missing_or_repeated_ids('stg_cdrs', 'stg_cdrs_id_census')
