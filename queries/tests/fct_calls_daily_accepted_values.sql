-- calls carry an account and only the contract's directions and statuses, ISO country and currency codes, and dates
-- incremental: utc_date
-- Row by row, so an incremental build checks the changed days' rows alone.
select
    account,
    report_date,
    utc_date,
    direction,
    status,
    country_code,
    currency,
    calls,
from fct_calls_daily
where account is null
    or report_date is null
    or direction is null or direction not in ('inbound', 'outbound')
    or status is null or status not in ('answered', 'busy', 'no_answer', 'failed', 'cancelled')
    or country_code is null or not regexp_full_match(country_code, '[A-Z]{2}')
    or currency is null or not regexp_full_match(currency, '[A-Z]{3}')
    or sip_response_code is null or sip_response_code not between 100 and 699
