#!/usr/bin/perl
# perl_hash - a hash- and string-heavy Perl workload for preload_bench.
#
# Generates a corpus of pseudo-words from a seeded LCG, then: word counts
# and an inverted index in hashes, a hash of hashes of records that are
# serialised with join/sprintf and parsed back with split, a churn phase
# inserting and deleting keys of a large hash, and string rewriting with
# regexes.  Output depends only on sorted data, never on Perl's hash
# order, so the checksum is the same under every allocator.
# Argument: scale in percent (default 100).
use strict;
use warnings;

my $scale = @ARGV ? $ARGV[0] : 100;
my $LINES = int(14000 * $scale / 100);

my $state = 12345;
sub rnd {
    # 31-bit LCG, exact in integer arithmetic
    $state = ($state * 1103515245 + 12345) % 2147483648;
    return $state >> 8;
}

my @SYL = qw(ka lo mi ne su ta ri po an el or ix qu zh ba de fi go hu ja);
sub word {
    my $n = 1 + rnd() % 4;
    return join '', map { $SYL[rnd() % @SYL] } 1 .. $n;
}

my $sum = 0;
sub feed {
    # a simple rolling checksum of the bytes (unpack %32 sums them)
    my ($s) = @_;
    $sum = ($sum * 31 + unpack('%32C*', $s) + length($s)) % 4294967296;
}

# 1. corpus, counts, inverted index
my @lines;
for my $i (1 .. $LINES) {
    push @lines, join ' ', map { word() } 1 .. (3 + rnd() % 12);
}
my (%count, %index, %pair);
for my $ln (0 .. $#lines) {
    my @w = split / /, $lines[$ln];
    for my $w (@w) {
        $count{$w}++;
        push @{ $index{$w} }, $ln;
    }
    $pair{"$w[$_] $w[$_+1]"}++ for 0 .. $#w - 1;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 49];
feed(join ',', map { "$_=$count{$_}" } @top);
feed(scalar(keys %count) . ':' . scalar(keys %pair));
my $postings = 0;
$postings += @{ $index{$_} } for keys %index;
feed($postings);

# 2. records: hash of hashes, serialised and parsed back
my %rec;
for my $i (1 .. $LINES) {
    $rec{"r$i"} = { name => ucfirst(word()) . ' ' . word(), city => uc(word()),
                    tags => join(',', map { word() } 1 .. rnd() % 5),
                    score => sprintf('%d.%02d', rnd() % 1000, rnd() % 100) };
}
my $text = join "\n", map {
    my $r = $rec{$_};
    join '|', "id=$_", map { "$_=$r->{$_}" } sort keys %$r
} sort keys %rec;
my %bycity;
for my $line (split /\n/, $text) {
    my %f = map { split /=/, $_, 2 } split /\|/, $line;
    push @{ $bycity{$f{city}} }, $f{name};
}
feed(length $text);
feed(join ',', map { "$_:" . scalar @{ $bycity{$_} } } (sort keys %bycity)[0 .. 99]);
undef $text;
%rec = ();

# 3. churn: a large hash with string keys
my %h;
my @live;
for my $i (1 .. $LINES * 8) {
    if (@live && rnd() % 3 == 0) {
        delete $h{ pop @live };
    } else {
        my $k = word() . "/$i/" . ('x' x (rnd() % 40));
        $h{$k} = [$i, uc $k];
        push @live, $k;
    }
}
feed(scalar keys %h);
feed(join '', map { substr($_, 0, 3) } (sort keys %h)[0 .. 1999]);

# 4. string rewriting
my @parts;
for my $w (sort keys %count) {
    (my $s = "$w:$count{$w}:" . reverse($w)) =~ s/a/AA/g;
    $s =~ s/ix/-/g;
    push @parts, sprintf('%-24s', $s);
}
my $big = join "\n", @parts;
feed(length($big) . substr($big, 0, 1000) . substr($big, -1000));

printf "perl_hash lines=%d words=%d checksum=%08x\n", $LINES, scalar(keys %count), $sum;
