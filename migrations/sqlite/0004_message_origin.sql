-- A message's idempotency key is scoped by who vouched for it: origin '' for deliveries
-- authenticated by the app's identification keys, the post token of a legacy registration
-- for deliveries authenticated by that registration's key. A registration key can then never
-- collide with (hide, replace or reveal) a message of another post.
--
-- SQLite cannot drop the inline unique constraint on id: the table is rebuilt with every row
-- and its seq, and the autoincrement counter is carried over, so a seq is never used twice.

create table message_scoped (
    seq             integer primary key autoincrement,
    id              text not null,               -- Divar's message id
    source          text not null,
    event_type      text not null,
    conversation_id text not null,
    post_token      text,
    message_type    text not null,
    text            text,
    sender_side     text,
    sender_type     text,
    sender_id       text,
    receiver_side   text,
    receiver_id     text,
    sent_at         integer not null,
    sent_at_raw     text,
    received_at     integer not null,
    data            text,
    metadata        text,
    raw_body        blob not null,
    origin          text not null default '',    -- '' or the registration's post token
    unique (id, origin)                          -- the idempotency key
);

insert into message_scoped (seq, id, source, event_type, conversation_id, post_token,
    message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id,
    sent_at, sent_at_raw, received_at, data, metadata, raw_body)
select seq, id, source, event_type, conversation_id, post_token, message_type, text,
    sender_side, sender_type, sender_id, receiver_side, receiver_id, sent_at, sent_at_raw,
    received_at, data, metadata, raw_body
from message order by seq;

delete from sqlite_sequence where name = 'message_scoped';
insert into sqlite_sequence (name, seq) select 'message_scoped', seq from sqlite_sequence where name = 'message';

drop table message;
alter table message_scoped rename to message;

create index message_conversation_idx on message (conversation_id, sent_at, id);
create index message_post_idx on message (post_token, sent_at, id);
create index message_sent_idx on message (sent_at, id);
