"""Reports over a shop's program: the dashboard summary, the referral log and CSV exports."""
