-- message_is_delivered(status): whether a message with this status reached the handset
-- The one definition that the messages' facts and the delivery alerts share.
create macro message_is_delivered(status) as status = 'delivered'
