-- id_hashes(source_table): one row per record of a lake dataset: the UTC day of its created_at, and the hash of its account and id (null without an id)
-- The index of every id the lake holds, day by day: the dataset's id census is counted from it,
-- and an incremental build looks up the changed days' ids in the other days' (an id is one
-- record per account, so the hash is of both). Versions of one record share created_at, so
-- they share a day. The day is counted from microseconds: a TIMESTAMPTZ cast costs far more.
create macro id_hashes(source_table) as table
select
    date '1970-01-01' + (epoch_us(created_at) // 86400000000)::integer as utc_date,
    if(id is null, null, hash(account, id)) as id_hash,
from query_table(source_table)
