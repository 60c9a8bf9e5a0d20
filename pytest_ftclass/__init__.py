"""pytest-ftclass: evaluate fine-tuned classifiers served over the OpenAI API with pytest.

>>> from pytest_ftclass import load_cases
>>> load_cases([{"input": "Goal!", "label": "sport"}])[0].label
'sport'
"""

from __future__ import annotations

from pytest_ftclass.cases.sources import Case, CaseSourceError, load_cases
from pytest_ftclass.results import CaseResult, Prediction
from pytest_ftclass.version import __version__

__all__ = ["Case", "CaseResult", "CaseSourceError", "Prediction", "__version__", "load_cases"]
