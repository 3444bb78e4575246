"""Huiliu's deployment helpers and local runtime (not deployed to Lambda)."""
