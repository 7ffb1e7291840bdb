"""igpt_lib: the helper library behind the InstructGPT kit's notebooks.

Nothing happens at import: no seeds, downloads, prints or file writes.
"""
__version__ = "0.1.0"
