"""Repositories: the only code in ``shared/`` that talks to AWS."""
