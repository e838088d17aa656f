"""The validate-only `/check` drop folder: a set dropped there is validated and planned
against the roster, never applied, and its answer written back into `/check/results/`."""
