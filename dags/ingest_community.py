"""Ingest the community department's feeds (see datahub.airflow_support.make_ingest_dag)."""

from datahub.airflow_support import make_ingest_dag

dag = make_ingest_dag("community")
