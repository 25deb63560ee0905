"""Front end: .hc text -> syntax tree (parser.py) -> validated ModelSpec (validate.py)."""
