-- fct_message_errors_daily: one row per account, report date, direction, error code and title reported on messages; key: account, report_date, direction, error_code, error_title
-- incremental: report_date
-- A message with several errors counts once under each distinct one.
with messages as (
    select * from int_messages_dated
    where len(errors) > 0
),

errors as (
    select
        account,
        report_date,
        direction,
        unnest(list_distinct(errors)) as error,
    from messages
),

final as (
    select
        account,
        report_date,
        direction,
        error.code as error_code,
        error.title as error_title,
        count(*) as messages,
    from errors
    group by all
)

select * from final
