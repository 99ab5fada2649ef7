"""Use cases of the notifier: the only thing its routes and event handlers call."""
