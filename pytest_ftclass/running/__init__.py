"""One run: cases as pytest items and the run's state (``items``), which cases go
where and through which cassette (``evaluation``), the local reference models
(``local_models``), keys and endpoints (``credentials``), one fetch per group
under pytest-xdist (``shared_predictions``), the progress line, the selection,
and the session's report collector (``session``).
"""
