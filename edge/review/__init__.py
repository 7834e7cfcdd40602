"""Read-only views of the event log for people: tables and the HTML report."""
