"""Reports over a shop's program: the summary (with its roll-up), the referral log, exports."""

from referral_plugin.reports.rollup import install

# Every process that builds the app imports this package (the admin blueprint does), so every process
# that writes counted rows retires stale roll-ups, whether or not it ever serves a summary.
install()
