"""Prefect flows: the only package that imports prefect. Tasks wrap one call each; flows wire tasks."""
