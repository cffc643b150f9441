-- a call's cost is rate x billed_duration_secs / 60, rounded half-up to 6 decimals
-- Checked without division (DuckDB divides decimals in floating point): cost is the rounded
-- value exactly when cost has at most 6 decimals and -0.00003 <= rate x billed - 60 x cost < 0.00003.
select
    id,
    rate,
    billed_duration_secs,
    cost,
    rate * billed_duration_secs - 60 * cost as unrounded_difference,
from stg_cdrs
where cost is null
    or rate is null
    or cost <> round(cost, 6)
    or rate * billed_duration_secs - 60 * cost < -0.00003
    or rate * billed_duration_secs - 60 * cost >= 0.00003
