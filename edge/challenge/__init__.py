"""The POS integration and the Challenge policy: events, zone, policy, HTTP endpoint, alerts and evidence."""
