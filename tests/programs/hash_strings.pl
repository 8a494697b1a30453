#!/usr/bin/perl
# hash_strings.pl - hash- and string-heavy perl with a fixed output:
# keys are always printed sorted, so Perl's randomised hash order never
# shows. Byte-identical under any correct allocator.
use strict;
use warnings;

my $x = 4242;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

my @words;
for (1 .. 50000) {
    my $len = 3 + rnd() % 9;
    push @words, join '', map { chr(97 + rnd() % 26) } 1 .. $len;
}

my %count;
$count{$_}++ for @words;

my %by_len;
push @{ $by_len{ length $_ } }, $_ for sort keys %count;

my %scratch;
for my $i (0 .. $#words) {
    $scratch{"$words[$i]:$i"} = $words[$i] x 3;
    delete $scratch{"$words[$i >> 1]:" . ($i >> 1)} if $i % 3 == 0;
}

my $text = join ' ', @words;
(my $subst = uc $text) =~ s/([AEIOU])/<$1>/g;
my @split = split /\s+/, $subst;

printf "words %d distinct %d scratch %d split %d\n",
    scalar @words, scalar keys %count, scalar keys %scratch, scalar @split;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
print "top: @top\n";
for my $len (sort { $a <=> $b } keys %by_len) {
    my $l = $by_len{$len};
    printf "len %2d: %5d words, %s .. %s\n", $len, scalar @$l, $l->[0], $l->[-1];
}
my $bytes = 0;
$bytes += length $scratch{$_} for keys %scratch;
print "scratch bytes $bytes\n";
print substr($subst, 0, 120), "\n";
