-- rpt_message_failure_reasons: one row per account, report month and error (code, title) reported on messages; key: account, month, error_code, error_title
-- incremental: month
-- share_of_errors: of the account's error reports that month (a message with two errors reports twice).
with errors as (
    select * from fct_message_errors_daily
    where report_date >= recomputed_month_start()
),

counted as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        error_code,
        error_title,
        sum(messages) as messages,
    from errors
    group by all
),

final as (
    select
        account,
        month,
        error_code,
        error_title,
        messages::bigint as messages,
        messages / sum(messages) over (partition by account, month) as share_of_errors,
    from counted
)

select * from final
order by account, month, messages desc, error_code, error_title
