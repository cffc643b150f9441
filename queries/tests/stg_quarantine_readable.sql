-- every quarantined record has an account, a known record type, the slice it came in and its raw text (else reconciliation cannot place it)
select
    account,
    kind,
    utc_date,
    record_key,
    last_run_id,
    last_seen_at,
from stg_quarantine
where account is null
    or kind is null or kind not in ('cdrs', 'mdrs')
    or utc_date is null
    or record_key is null
