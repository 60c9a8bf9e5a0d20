"""Asking the model: request bodies and answers (``endpoints``), batched and
concurrent requests through the official client (``predict``), the Batch API
(``batch_api``), and what a refused model is asked no more (``refusals``).
"""
