#!/usr/bin/perl
# Prints the filter expressions of libpcap's own accept tests (testprogs/TESTrun, given as the
# argument) whose link type is Ethernet, one per line (`name<TAB>expression`). Reads the test
# table by evaluating its definition with every helper function stubbed out.

no strict;
no warnings;

my $file = shift or die "usage: $0 path/to/libpcap/testprogs/TESTrun\n";
open my $fh, '<', $file or die "$file: $!\n";
my @lines = <$fh>;
close $fh;

# From the first definition the table uses to the end of the table.
my ($from, $to);
for my $i (0 .. $#lines) {
    $from //= $i if $lines[$i] =~ /^my \$valid_opcodes_enumeration\b/;
    if ($lines[$i] =~ /^my \@filter_accept_blocks\s*=/) {
        $from //= $i;
        for my $j ($i .. $#lines) {
            if ($lines[$j] =~ /^\);/) { $to = $j; last; }
        }
        last;
    }
}
die "no \@filter_accept_blocks in $file\n" unless defined $from && defined $to;

package Stub;
our $AUTOLOAD;
sub AUTOLOAD { return 0 }
my $nonexistent = 'host.invalid.';
my $code = join '', @lines[$from .. $to];
$code =~ s/^my \@filter_accept_blocks/\@filter_accept_blocks/m;
our @filter_accept_blocks;
eval "$code; 1" or die "evaluating the table: $@\n";
for my $b (@filter_accept_blocks) {
    next unless ($b->{DLT} // '') eq 'EN10MB';
    my @e = @{ $b->{aliases} // [] };
    push @e, $b->{expr} if defined $b->{expr};
    for my $e (@e) {
        (my $x = $e) =~ s/\s*\n\s*/ /g;
        print "$b->{name}\t$x\n";
    }
}
