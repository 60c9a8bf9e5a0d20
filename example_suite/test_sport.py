"""The binary task, declared in Python: is an article about sport?

The cases are asked of a second reference model, trained on the binary training
file: ``local:PATH`` names the local reference model trained on PATH (relative
to the rootdir).  With a fine-tune of your own, put its id here instead.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA

SPORT_MODEL = "local:data/bbc_sport.train.jsonl"


@pytest.mark.ft_cases("data/bbc_sport.valid.csv", model=SPORT_MODEL)
def test_sport_or_other(ft_case, ft_prediction):
    assert ft_prediction.label == ft_case.label


SPORT_ARTICLES = pd.read_csv(DATA["sport_valid"]).query("label == 'sport'")


@pytest.mark.ft_cases(SPORT_ARTICLES, model=SPORT_MODEL)
def test_sport_is_recognised_confidently(ft_case, ft_prediction):
    assert ft_prediction.probability("sport") > 0.5
