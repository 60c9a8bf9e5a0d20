"""One run: which cases go where (``evaluation``), requests read ahead while items
run (``read_ahead``), one fetch per group under pytest-xdist
(``shared_predictions``), the progress line, the selection, and the session's
report collector (``session``).
"""
