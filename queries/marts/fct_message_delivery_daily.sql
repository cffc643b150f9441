-- fct_message_delivery_daily: one row per account, report date, direction, carrier, message type, encoding, parts and status; key: account, report_date, direction, carrier, message_type, encoding, parts, status
-- incremental: report_date
-- Carrier and segment detail of the messages, for delivery rates and parts per message.
select
    account,
    report_date,
    direction,
    carrier,
    message_type,
    encoding,
    parts,
    status,
    count(*) as messages,
from int_messages_dated
group by all
