"""Detection: rule files (rules.py), matching (detect.py), decoding layers (decode.py) and
offline facts about AWS key IDs (awskeys.py)."""
