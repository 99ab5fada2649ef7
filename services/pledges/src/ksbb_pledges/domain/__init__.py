"""Pure rules and value objects of pledges, ledgers, offers and donors (no I/O)."""
