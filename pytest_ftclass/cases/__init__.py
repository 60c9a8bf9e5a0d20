"""Case sources and the data checks: files, DataFrames and lists become :class:`Case`
objects (``sources``); ``lint`` and ``prepare`` check and fix fine-tuning data;
``tokens`` counts tokens with tiktoken, offline.
"""
