-- seen_dimension(facts_table, id_column, name_column, count_column): one row per account and id_column value seen in a daily fact: id, name (its latest), first_report_date, last_report_date, records (the sum of count_column); key: account, id
-- One definition of a dimension of the things records name (a connection, a messaging profile):
-- a name can change, so the latest version's (last_updated_at, macros/latest_name.sql) names it. Each dim_ model renames
-- id, name and records to its own columns.
create macro seen_dimension(facts_table, id_column, name_column, count_column) as table
select
    account,
    id_column as id,
    latest_name(name_column, last_updated_at) as name,
    min(report_date) as first_report_date,
    max(report_date) as last_report_date,
    sum(count_column)::bigint as records,
from query_table(facts_table)
group by account, id_column
