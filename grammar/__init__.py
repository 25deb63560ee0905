"""The .hc grammar (hc.lark), shipped as package data."""
