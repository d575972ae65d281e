"""Reproducible speed and memory runs of the planner (DESIGN.md §3, §6); see ``benchmarks/run.py``."""
