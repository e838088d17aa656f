"""The Clever CSV format: finding the five files, reading them, validating rows and references."""
