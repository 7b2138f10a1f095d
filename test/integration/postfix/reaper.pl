#!/usr/bin/perl
# Usage: perl reaper.pl COMMAND [ARG...]
#
# Runs COMMAND (e.g. `postfix -c DIR start`) as a child subreaper
# (prctl PR_SET_CHILD_SUBREAPER): the Postfix master that COMMAND daemonizes, and
# master's children after master exits, are re-parented to this process instead of
# PID 1, and it reaps them. Without this, on machines whose PID 1 does not reap
# orphans (some containers and microVMs), every test instance leaves zombies behind.
#
# Prints "status N" on stdout when COMMAND ends (N = its exit code), then reaps until
# no descendant is left and exits 0. So: this process ends exactly when the Postfix
# instance is entirely gone. Perl is there wherever swaks is.
use strict;
use warnings;

$| = 1;
# Signals aimed at the whole process group (Ctrl-C, timeout(1)) reach us too; the test
# process then aborts Postfix and we end once it is gone. Dying first would orphan it.
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP);

my $subreaper = eval {
    require 'syscall.ph';
    syscall(SYS_prctl(), 36, 1, 0, 0, 0) == 0;    # 36 = PR_SET_CHILD_SUBREAPER
};
print STDERR "reaper.pl: cannot become a child subreaper; Postfix processes may end as zombies\n" unless $subreaper;

my $pid = fork();
die "reaper.pl: fork: $!" unless defined $pid;
if ($pid == 0) {
    exec { $ARGV[0] } @ARGV or die "reaper.pl: exec $ARGV[0]: $!";
}
waitpid($pid, 0);
my $status = $? & 127 ? 128 + ($? & 127) : $? >> 8;
print "status $status\n";
close STDOUT;

1 while wait() != -1;
exit 0;
