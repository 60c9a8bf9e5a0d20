"""pytest-ftclass: evaluate fine-tuned classifiers served over the OpenAI API with pytest.

>>> from pytest_ftclass import load_cases
>>> load_cases([{"input": "Goal!", "label": "sport"}])[0].label
'sport'
"""

from __future__ import annotations

from .cases import Case, CaseSourceError, load_cases
from .results import CaseResult, Prediction

__version__ = "0.1.0"

__all__ = ["Case", "CaseResult", "CaseSourceError", "Prediction", "__version__", "load_cases"]
