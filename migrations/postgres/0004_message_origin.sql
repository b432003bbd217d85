-- A message's idempotency key is scoped by who vouched for it: origin '' for deliveries
-- authenticated by the app's identification keys, the post token of a legacy registration
-- for deliveries authenticated by that registration's key. A registration key can then never
-- collide with (hide, replace or reveal) a message of another post.

alter table message add column origin text not null default '';

-- The primary key was the id alone; it becomes (id, origin), whose index also serves
-- look-ups by id.
alter table message drop constraint message_pkey;
alter table message add constraint message_pkey primary key (id, origin);
