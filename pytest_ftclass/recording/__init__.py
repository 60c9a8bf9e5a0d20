"""Cassettes: recording with vcrpy and replaying (``recorder``, ``cassette_index``),
the Batch API's traffic rules (``batch_traffic``), secrets redacted by value
(``redaction``), and files written whole (``atomic``).
"""
