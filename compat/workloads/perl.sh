# compat: perl: regexes, hashes, sort, sprintf, file I/O, pack/unpack, a fork and a pipe, Digest::MD5, POSIX
# packages: perl,perl-base,dash
# quick: yes
# timeout: 120
set -eu
perl -e 'print "perl ", ($] >= 5.036 ? "5.36+" : $]), "\n"'
perl -Mstrict -Mwarnings - <<'PERL'
use Digest::MD5 qw(md5_hex);
use POSIX qw(floor strftime);
use File::Path qw(make_path);
use File::Find;
my %count;
my $text = join " ", map { "word$_ " x ($_ % 7) } 1 .. 300;
$count{$_}++ for split /\s+/, $text;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
print "top: @top\n";
print "regex: ", join(",", "2024-01-02 and 1999-12-31" =~ /(\d{4})-(\d\d)-(\d\d)/g), "\n";
(my $s = "Hello, World") =~ tr/a-z/A-Z/;
print "tr: $s\n";
printf "sprintf: %05.1f|%-6s|%x|%e\n", 3.14159, "ab", 255, 12345.678;
print "pack: ", unpack("H*", pack("NnC", 0xdeadbeef, 513, 7)), "\n";
print "md5: ", md5_hex("mapvisor" x 1000), "\n";
print "floor: ", floor(-2.5), " strftime: ", strftime("%Y-%m-%d %H:%M:%S", gmtime(86400 * 365)), "\n";
make_path("tree/a/b", "tree/c");
for my $f ("tree/a/one.txt", "tree/a/b/two.txt", "tree/c/three.txt") {
    open(my $fh, ">", $f) or die "$f: $!";
    print $fh "file $f\n" x 3;
    close $fh;
}
my @found;
find(sub { push @found, $File::Find::name if -f }, "tree");
print "find: ", join(" ", sort @found), "\n";
open(my $in, "<", "tree/a/b/two.txt") or die;
my @lines = <$in>;
close $in;
print "lines: ", scalar(@lines), "\n";
pipe(my $r, my $w) or die;
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    close $r;
    print $w "from child $_\n" for 1 .. 100;
    close $w;
    exit 7;
}
close $w;
my @got = <$r>;
waitpid($pid, 0);
print "pipe: ", scalar(@got), " lines, child status ", $? >> 8, "\n";
my $out = `echo backticks | tr a-z A-Z`;
print "qx: $out";
my %h = map { $_ => $_ ** 2 } 1 .. 10;
print "hash: ", join(",", map { "$_=$h{$_}" } sort { $a <=> $b } keys %h), "\n";
local $@;
eval { die "oops\n" };
print "eval: $@";
my @sorted = sort { $a->[1] <=> $b->[1] or $a->[0] cmp $b->[0] } map { [$_, length $_] } qw(pear fig apple kiwi banana);
print "sort: ", join(" ", map { $_->[0] } @sorted), "\n";
open(my $o, ">", "summary.txt") or die;
print $o "$_ $count{$_}\n" for @top;
close $o;
PERL
echo "exit $?"
