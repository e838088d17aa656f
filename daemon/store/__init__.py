"""The database: tables, migrations, and the only code that knows SQL dialects."""
