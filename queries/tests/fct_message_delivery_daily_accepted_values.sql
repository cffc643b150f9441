-- messages use only the contract's encodings and at least one part
-- incremental: utc_date
-- Row by row, so an incremental build checks the changed days' rows alone.
select
    account,
    report_date,
    carrier,
    encoding,
    parts,
    messages,
from fct_message_delivery_daily
where encoding is null or encoding not in ('gsm7', 'ucs2')
    or parts is null or parts < 1
    or carrier is null
