"""Executors and the rendering of task scripts."""
