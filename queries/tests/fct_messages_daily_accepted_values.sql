-- messages carry an account and only the contract's directions, types and statuses, ISO country and currency codes, and dates
-- incremental: utc_date
-- Row by row, so an incremental build checks the changed days' rows alone.
select
    account,
    report_date,
    utc_date,
    direction,
    message_type,
    status,
    country_code,
    currency,
    messages,
from fct_messages_daily
where account is null
    or report_date is null
    or direction is null or direction not in ('inbound', 'outbound')
    or message_type is null or message_type not in ('sms', 'mms')
    or status is null or status not in (
        'queued', 'sent', 'delivered', 'delivery_failed', 'delivery_unconfirmed', 'received', 'gateway_rejected'
    )
    or country_code is null or not regexp_full_match(country_code, '[A-Z]{2}')
    or currency is null or not regexp_full_match(currency, '[A-Z]{3}')
