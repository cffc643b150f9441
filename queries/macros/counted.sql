-- counted(amount, singular, plural): a count and its noun as a message says them: `1 call`, `0 calls`, `1,204 calls`, `2 countries` (plural: for a noun not made plural by an s)
-- The wording of pipelines/errors.py's `counted` (and `noun`), which SQL cannot call: alert messages
-- and report labels count as the CLI's messages do, never "1 calls".
create macro counted(amount, singular, plural := null) as
    printf('%,d', amount::bigint) || ' '
    || case when amount::bigint = 1 then singular else coalesce(plural, singular || 's') end
