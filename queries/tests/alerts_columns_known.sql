-- alert rules (alert_* views): every column is one rpt_alerts reads; the union by name would keep a misspelt scope column apart and leave the real one null
with rule_columns as (
    select columns.table_name as rule_view, columns.column_name
    from duckdb_views() as views
    join duckdb_columns() as columns
        on columns.database_name = views.database_name
        and columns.schema_name = views.schema_name
        and columns.table_name = views.view_name
    where views.database_name = current_database()
        and starts_with(views.view_name, 'alert_')
),

-- read for its order only: the rules are all built before it
built as (
    select count(*) as alerts from rpt_alerts
)

select rule_columns.rule_view, rule_columns.column_name,
from rule_columns
cross join built
where rule_columns.column_name not in (
    'account', 'rule', 'severity', 'product', 'direction', 'country_code', 'connection_id', 'connection_name', 'carrier',
    'currency', 'window_start', 'window_end', 'observed', 'baseline', 'threshold', 'message'
)
