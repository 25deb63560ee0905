"""The bundled .hc specs: every family hcdsl compiles and the papers' configurations.

Installed as the package data of `hcdsl.specs`; `hcdsl demo` reads them with
importlib.resources.
"""
