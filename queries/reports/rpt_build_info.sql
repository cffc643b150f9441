-- rpt_build_info: one row describing this build of the warehouse; key: none (a single row)
-- What every page can print as "as of": when it was built, in which reporting time zone,
-- and the span of records it holds.
with calls as (
    select * from fct_calls_daily
),

messages as (
    select * from fct_messages_daily
),

final as (
    select
        now() as built_at,
        report_timezone() as report_timezone,
        (select coalesce(sum(calls), 0) from calls)::bigint as calls,
        (select coalesce(sum(messages), 0) from messages)::bigint as messages,
        least((select min(report_date) from calls), (select min(report_date) from messages)) as first_report_date,
        greatest((select max(report_date) from calls), (select max(report_date) from messages)) as last_report_date,
)

select * from final
