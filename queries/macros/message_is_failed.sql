-- message_is_failed(status): whether a message with this status failed for good
-- The carrier or the gateway said no: the one definition that the messages' facts and the
-- failure alerts share, whether they read records or counts per status.
create macro message_is_failed(status) as status in ('delivery_failed', 'gateway_rejected')
