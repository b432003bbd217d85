-- this database's installation id: made once, at random, when the database is created or
-- reaches this version, and never changed. forwarding puts it in every webhook-id, so a
-- database that is rebuilt (its seqs start over) never repeats an id a receiver has seen.
-- one row: the primary key can only be true.

create table installation (
    one boolean primary key default true check (one),
    id  text not null check (id ~ '^[0-9a-f]{32}$')
);
-- gen_random_uuid() is built in from postgresql 13: 122 random bits, as 32 hex digits.
insert into installation (id) values (replace(gen_random_uuid()::text, '-', ''));
