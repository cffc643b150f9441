-- alert_rows(fired_table, rule_name, severity_level, scope_columns, alert_window, message_text): one row per row of fired_table, laid out as every alert rule returns it: account, rule, severity, the fields of scope_columns, those of alert_window (window_start, window_end), observed, baseline, threshold, message; key: the rule's scope and window
-- The one layout of the alert_* views that rpt_alerts unions by name: scope_columns is a struct
-- of the scope columns the rule's grain sets, in order (the union leaves the others null);
-- account, observed, baseline and threshold are fired_table's columns.
create macro alert_rows(fired_table, rule_name, severity_level, scope_columns, alert_window, message_text) as table
with alerts as (
    select
        account,
        rule_name as rule,
        severity_level as severity,
        scope_columns as alert_scope,
        alert_window as alert_period,
        observed,
        baseline,
        threshold,
        message_text as message,
    from query_table(fired_table)
),

final as (
    select
        account,
        rule,
        severity,
        alert_scope.*,
        alert_period.*,
        observed,
        baseline,
        threshold,
        message,
    from alerts
)

select * from final
