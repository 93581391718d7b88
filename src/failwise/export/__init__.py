"""Export the event log for offline analysis: Parquet files that DuckDB (and pandas) read.

``failwise export --store URL --to DIR`` or :func:`to_parquet`; then
``failwise.outcomes.measure(DIR)`` computes the product metrics over the export with the
same SQL the stores run, on DuckDB or (``engine="spark"``) Apache Spark. Needs the
``analytics`` extra (pyarrow, duckdb), and ``spark`` (pyspark) for Spark.
"""

from __future__ import annotations

from failwise.export._parquet import TABLES, ExportSummary, to_parquet

__all__ = ["TABLES", "ExportSummary", "to_parquet"]
