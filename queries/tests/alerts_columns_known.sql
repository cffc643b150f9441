-- alert rules (alert_* tables, or views while an incremental build merges their rows): every column is one rpt_alerts reads; the union by name would keep a misspelt scope column apart and leave the real one null
-- alert_thresholds and alert_config are the build's reference tables, not rules.
with rule_columns as (
    select table_name as rule_table, column_name
    from duckdb_columns()
    where database_name = current_database()
        and schema_name = 'main'
        and starts_with(table_name, 'alert_')
        and table_name not in ('alert_thresholds', 'alert_config')
),

-- read for its order only: the rules are all built before it
built as (
    select count(*) as alerts from rpt_alerts
)

select rule_columns.rule_table, rule_columns.column_name,
from rule_columns
cross join built
where rule_columns.column_name not in (
    'account', 'rule', 'severity', 'product', 'direction', 'country_code', 'connection_id', 'connection_name', 'carrier',
    'currency', 'window_start', 'window_end', 'observed', 'baseline', 'threshold', 'message'
)
