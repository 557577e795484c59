"""Pure image work on bytes: sniff, inspect, scrub. No database, web or disk I/O."""
