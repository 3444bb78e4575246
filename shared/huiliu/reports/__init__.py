"""Reports: counters kept as events flow (the reports stage), read in O(report size) by the admin API."""
