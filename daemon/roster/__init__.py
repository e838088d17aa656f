"""The roster domain: entities, the plan of changes an upload implies, thresholds, outcomes."""
