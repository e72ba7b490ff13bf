# compat: sqlite3 WAL mode with processes at the same time: while a writer's transaction is open, a reader (another process) sees the last commit and a second writer is refused
# packages: sqlite3,dash,grep
# quick: yes
# timeout: 60
set -eu
sqlite3 wal.db <<'SQL'
pragma journal_mode=wal;
create table items(id integer primary key, price real);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 100)
insert into items(price) select i from n;
SQL
# Other processes while a writer's transaction is open: a reader sees the last commit, a second writer is refused.
sqlite3 wal.db <<'SQL'
begin;
update items set price = 0 where id <= 10;
select 'writer sees', count(*) from items where price = 0;
.shell sqlite3 wal.db "select 'reader sees', count(*) from items where price = 0;"
.shell sqlite3 wal.db "update items set price = 1 where id = 20;" 2>/dev/null; echo "second writer status $?"
commit;
SQL
sqlite3 wal.db "select 'after commit', count(*) from items where price = 0;"
sqlite3 wal.db 'pragma journal_mode=delete;'
ls
echo "exit $?"
