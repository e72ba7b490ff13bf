# compat: sqlite3 CLI with WAL mode: a table filled in transactions, indexes, a join, a checkpoint, one process after another on the live WAL (sqlite-concurrent: at the same time)
# packages: sqlite3,dash,grep
# quick: yes
# timeout: 120
set -eu
sqlite3 --version | cut -d' ' -f1 | cut -d. -f1
sqlite3 wal.db <<'SQL'
pragma journal_mode=wal;
pragma synchronous=normal;
create table items(id integer primary key, name text not null, price real, cat integer);
create table cats(id integer primary key, label text);
insert into cats values (1, 'tools'), (2, 'food'), (3, 'books');
begin;
with recursive n(i) as (select 1 union all select i + 1 from n where i < 5000)
insert into items(name, price, cat) select 'item' || i, (i * 37 % 1000) / 10.0, i % 3 + 1 from n;
commit;
create index items_cat on items(cat, price);
select count(*), round(sum(price), 1) from items;
select c.label, count(*), round(avg(i.price), 2) from items i join cats c on c.id = i.cat group by c.label order by c.label;
select name from items where cat = 2 and price > 99.5 order by id limit 3;
SQL
test -f wal.db-wal && echo "wal file present"
sqlite3 wal.db 'update items set price = 0 where id <= 10;'
sqlite3 wal.db "select 'after update', count(*) from items where price = 0;"
sqlite3 wal.db 'pragma wal_checkpoint(truncate);' 'pragma journal_mode;' 'pragma integrity_check;'
sqlite3 wal.db 'update items set price = price + 1 where cat = 3;' 'select round(sum(price), 1) from items;'
sqlite3 -csv wal.db 'select * from items order by id limit 5;' > first5.csv
cat first5.csv
sqlite3 wal.db .dump | grep -c 'INSERT INTO'
sqlite3 wal.db 'pragma journal_mode=delete;'
sqlite3 wal.db 'vacuum;'
ls
echo "exit $?"
