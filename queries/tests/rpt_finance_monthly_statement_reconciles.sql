-- each account's finance statement: its records, billed seconds, parts and cost equal the sums over the records themselves, to the last decimal
-- The records are totalled from the tag-set facts, apart from fct_calls_daily and
-- fct_messages_daily that the statement reads: a row lost or counted twice on either path shows.
with record_months as (
    -- grouped by the month's first day, formatted after: cheaper than formatting every record
    select
        account,
        date_trunc('month', report_date) as month_start,
        'voice' as product,
        direction,
        currency,
        sum(calls) as records,
        sum(billed_duration_secs) as billed_duration_secs,
        0 as parts,
        sum(cost) as cost,
    from fct_call_tag_sets_daily
    group by all
    union all
    select
        account,
        date_trunc('month', report_date) as month_start,
        message_type as product,
        direction,
        currency,
        sum(messages) as records,
        0 as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
    from fct_message_tag_sets_daily
    group by all
),

records as (
    select
        account,
        strftime(month_start, '%Y-%m') as month,
        * exclude (month_start),
    from record_months
),

statement as (
    -- summed per key, so a row repeated in the statement shows as a double count
    select
        account,
        month,
        product,
        direction,
        currency,
        count(*) as statement_rows,
        sum(records) as records,
        sum(billed_duration_secs) as billed_duration_secs,
        sum(parts) as parts,
        sum(cost) as cost,
    from rpt_finance_monthly_statement
    group by all
)

select
    coalesce(statement.account, records.account) as account,
    coalesce(statement.month, records.month) as month,
    coalesce(statement.product, records.product) as product,
    coalesce(statement.direction, records.direction) as direction,
    coalesce(statement.currency, records.currency) as currency,
    statement.statement_rows,
    statement.records as statement_records,
    records.records as records,
    statement.cost as statement_cost,
    records.cost as records_cost,
from statement
full outer join records
    on statement.account = records.account
    and statement.month = records.month
    and statement.product = records.product
    and statement.direction = records.direction
    and statement.currency = records.currency
where statement.statement_rows is distinct from 1
    or statement.records is distinct from records.records
    or statement.billed_duration_secs is distinct from records.billed_duration_secs
    or statement.parts is distinct from records.parts
    or statement.cost is distinct from records.cost
