"""Judging a run: metrics (pure functions of per-case results), intervals,
calibration, significance, the quality gate and the comparison of two models.
Nothing here imports pytest or the HTTP stack.
"""
