-- messages: one row per message (latest version), with the lake's column names; key: account, id
-- For ad-hoc SQL (`cdr sql`, or the duckdb CLI on the warehouse). Reads the lake live.
select * from stg_mdrs
