-- this database's installation id: made once, at random, when the database is created or
-- reaches this version, and never changed. forwarding puts it in every webhook-id, so a
-- database that is rebuilt (its seqs start over) never repeats an id a receiver has seen.
-- one row: the primary key can only be 1.

create table installation (
    one integer primary key default 1 check (one = 1),
    id  text not null check (length(id) = 32 and id not glob '*[^0-9a-f]*')
);
-- 16 random bytes as 32 hex digits.
insert into installation (id) values (lower(hex(randomblob(16))));
