-- alert_key(account, rule, product, direction, country_code, connection_id, carrier, currency, window_start, window_end): the stable key of one alert, an md5 hex string
-- The same alert keeps its key from build to build: the account, the rule, every scope column
-- (null as '') and the window's instants. The default account is left out of the text hashed,
-- so a data dir from before accounts keeps its alerts' keys (and what was sent and snoozed);
-- any other account adds a field, so no two accounts' alerts share a key. A connection's name is left out: it describes the scope, and a
-- renamed connection is still the same condition.
create macro alert_key(account, rule, product, direction, country_code, connection_id, carrier, currency, window_start, window_end) as
md5(concat_ws(
    '|',
    nullif(account, 'default'),
    rule,
    coalesce(product, ''),
    coalesce(direction, ''),
    coalesce(country_code, ''),
    coalesce(connection_id, ''),
    coalesce(carrier, ''),
    coalesce(currency, ''),
    epoch_us(window_start)::varchar,
    epoch_us(window_end)::varchar
))
