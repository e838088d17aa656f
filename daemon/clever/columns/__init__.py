"""The columnar engine: the careful rules as masks over whole columns (polars, pyarrow).

Rows that every mask passes are plain: their records are built column by column, exactly as
the careful path would build them. Every other row goes down the careful path, in line
order, as does every file the engine cannot read exactly (`parse`). polars and pyarrow are
imported only here and in the store's table loader.
"""
