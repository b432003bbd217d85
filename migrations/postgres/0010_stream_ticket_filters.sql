-- a stream ticket opens only the stream it was asked for: the filters given when it was
-- issued (post, conversation, include, from) are kept with it, as json text. null: none.

alter table stream_ticket add column filters text;
