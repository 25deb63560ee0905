"""The language itself, below every other layer: the catalogue of layer kinds and their
options, the connection presets' options, and the limits of what a spec may ask for.
Nothing here imports torch, networkx or lark."""
