"""Tests that need the real PostgreSQL and Elasticsearch started by scripts/services.sh."""
